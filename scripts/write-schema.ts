/** `npm run schema`: writes schema/workflow.schema.json from lib/definition/schema.ts. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { renderWorkflowJsonSchema, WORKFLOW_SCHEMA_FILE } from "../lib/definition/json-schema";

const path = fileURLToPath(new URL(`../${WORKFLOW_SCHEMA_FILE}`, import.meta.url));
mkdirSync(dirname(path), { recursive: true });
writeFileSync(path, renderWorkflowJsonSchema());
console.log(`wrote ${WORKFLOW_SCHEMA_FILE}`);
