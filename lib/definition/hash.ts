/**
 * Content hashes of JSON values: sha256 of the canonical JSON (object keys sorted at every depth),
 * so that the same content with keys in another order, or sent as YAML instead of JSON, has the
 * same hash.
 */
import { createHash } from "node:crypto";
import type { WorkflowDefinition } from "./types";

export function canonicalJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, item: unknown) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) return item;
    const record = item as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(record)
        .sort()
        .map((key) => [key, record[key]]),
    );
  });
  if (text === undefined) throw new TypeError("the value has no JSON representation");
  return text;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export function contentHash(value: unknown): string {
  return sha256(canonicalJson(value));
}

/** The identity of a normalized definition: registering the same one again keeps its version. */
export function definitionHash(definition: WorkflowDefinition): string {
  return contentHash(definition);
}
