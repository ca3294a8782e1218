/**
 * Dotted paths that name a place in a JSON document for people: `tasks.prepare.next[0].do[1]`.
 * The root is the empty string; keys that are not plain names are quoted (`headers["x.y"]`).
 */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export function joinPath(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  if (!PLAIN_KEY.test(key)) return `${base}[${JSON.stringify(key)}]`;
  return base === "" ? key : `${base}.${key}`;
}

/**
 * Turns a JSON Pointer (`/tasks/prepare/next/0`, as ajv's `instancePath`) into a dotted path. The
 * document is walked alongside so that a segment is written as an index only where it is one.
 */
export function pointerToPath(pointer: string, document: unknown, base = ""): string {
  if (pointer === "") return base;
  let path = base;
  let node: unknown = document;
  for (const raw of pointer.slice(1).split("/")) {
    const segment = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(node) && /^(0|[1-9][0-9]*)$/.test(segment)) {
      const index = Number(segment);
      path = joinPath(path, index);
      node = node[index];
    } else {
      path = joinPath(path, segment);
      node =
        node !== null && typeof node === "object" && Object.hasOwn(node, segment)
          ? (node as Record<string, unknown>)[segment]
          : undefined;
    }
  }
  return path;
}

/** A path for use inside a sentence: the root has no name of its own. */
export function describePath(path: string, root = "the document"): string {
  return path === "" ? root : path;
}
