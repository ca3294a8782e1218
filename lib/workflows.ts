import { actionNames } from "./actions/registry";
import { config } from "./config";
import { definitionHash } from "./definition/hash";
import { parseDefinitionBody } from "./definition/parse";
import type { WorkflowDefinition } from "./definition/types";
import { validateDefinition } from "./definition/validate";
import { InvalidWorkflowError, WorkflowNotFoundError } from "./errors";
import { IF_ABSENT } from "./store/conditional";
import { keys } from "./store/keys";
import { queryAll } from "./store/query";
import { readItem } from "./store/run-state";
import { transact } from "./store/transaction";

export interface WorkflowVersion {
  name: string;
  version: number;
  hash: string;
  definition: WorkflowDefinition;
  createdAt: string;
}

export interface Registration {
  name: string;
  version: number;
  /** false when the same definition was already the latest version. */
  created: boolean;
}

const REGISTER_ATTEMPTS = 10;
/** A version is one DynamoDB item (400 KB at most). */
const MAX_DEFINITION_BYTES = 300 * 1024;

/**
 * Registers a definition as the workflow's next version. The same definition as the latest keeps
 * its version. Two registrations racing for the same next version: the transaction lets one win,
 * the other starts over from the new latest (and answers "same version" if it was the same
 * definition).
 */
export async function registerWorkflow(
  name: string,
  body: string | undefined,
  contentType: string | undefined,
): Promise<Registration> {
  const raw = parseDefinitionBody(body, contentType);
  if (raw && typeof raw === "object" && !Array.isArray(raw) && !("name" in raw)) {
    (raw as Record<string, unknown>).name = name;
  }
  const definition = validateDefinition(raw, { actions: actionNames() });
  if (definition.name !== name) {
    throw new InvalidWorkflowError([
      {
        path: "name",
        message: `the definition is named '${definition.name}' but was sent to /workflows/${name}`,
      },
    ]);
  }
  const size = Buffer.byteLength(JSON.stringify(definition));
  if (size > MAX_DEFINITION_BYTES) {
    throw new InvalidWorkflowError([
      { path: "", message: `the definition is ${size} bytes, over ${MAX_DEFINITION_BYTES}` },
    ]);
  }
  const hash = definitionHash(definition);
  for (let i = 0; i < REGISTER_ATTEMPTS; i++) {
    const latest = await getLatestPointer(name);
    if (latest?.hash === hash) return { name, version: latest.version, created: false };
    const version = (latest?.version ?? 0) + 1;
    const createdAt = new Date().toISOString();
    const outcome = await transact([
      {
        Put: {
          TableName: config.tableName(),
          Item: { ...keys.workflowVersion(name, version), name, version, hash, definition, createdAt },
          // closes: two registrations writing the same version number; versions are immutable
          ConditionExpression: IF_ABSENT,
        },
      },
      {
        Put: {
          TableName: config.tableName(),
          Item: {
            ...keys.workflowLatest(name),
            ...keys.workflowListing(name),
            name,
            version,
            hash,
            createdAt,
          },
          // closes: the latest pointer moving backwards when registrations race
          ConditionExpression: latest ? "version = :previous" : IF_ABSENT,
          ExpressionAttributeValues: latest ? { ":previous": latest.version } : undefined,
        },
      },
    ]);
    if (outcome.ok) {
      versionCache.set(`${name}#${version}`, { name, version, hash, definition, createdAt });
      return { name, version, created: true };
    }
  }
  throw new Error(`could not register workflow ${name}: too much contention`);
}

function getLatestPointer(name: string): Promise<{ version: number; hash: string } | undefined> {
  return readItem(keys.workflowLatest(name));
}

export async function getLatestWorkflow(name: string): Promise<WorkflowVersion> {
  const latest = await getLatestPointer(name);
  if (!latest) throw new WorkflowNotFoundError(name);
  return getWorkflowVersion(name, latest.version);
}

/** Versions are immutable, so each process keeps the ones it has read. */
const versionCache = new Map<string, WorkflowVersion>();

export async function getWorkflowVersion(name: string, version: number): Promise<WorkflowVersion> {
  const cacheKey = `${name}#${version}`;
  const cached = versionCache.get(cacheKey);
  if (cached) return cached;
  const Item = await readItem<WorkflowVersion>(keys.workflowVersion(name, version));
  if (!Item) throw new WorkflowNotFoundError(`${name}@${version}`);
  const found: WorkflowVersion = {
    name,
    version,
    hash: Item.hash,
    definition: Item.definition,
    createdAt: Item.createdAt,
  };
  versionCache.set(cacheKey, found);
  return found;
}

/** A registered version, as `GET /workflows/{name}/versions` lists it. */
export interface VersionListEntry {
  version: number;
  createdAt: string;
  hash: string;
}

/** Every version of a workflow, newest first (a Query of its partition, definitions left out). */
export async function listVersions(name: string): Promise<VersionListEntry[]> {
  const items = await queryAll({
    KeyConditionExpression: "pk = :pk AND begins_with(sk, :v)",
    ExpressionAttributeValues: { ":pk": keys.workflowLatest(name).pk, ":v": "V#" },
    ProjectionExpression: "version, createdAt, #hash",
    ExpressionAttributeNames: { "#hash": "hash" },
    ScanIndexForward: false,
  });
  const versions = items.map((item) => ({
    version: item.version as number,
    createdAt: item.createdAt as string,
    hash: item.hash as string,
  }));
  if (versions.length === 0) throw new WorkflowNotFoundError(name);
  return versions;
}
