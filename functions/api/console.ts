/**
 * The web console's routes (docs/console.md): `GET /` and `GET /console` redirect to
 * `/console/`, which serves the console's page; `GET /console/{file}` its assets. The assets are
 * built by console/build.ts into console/dist (git-ignored): by the local stack when it starts, and
 * by infra/serverless-console.cjs before `osls package`, which puts them into the api function's
 * zip (serverless.yml). They are found by walking up from this module (the repository locally,
 * the zip's root on Lambda), read once, and served with gzip when the browser takes it. Only the
 * built files are served: a request names a file of the build's manifest, never a path on disk.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { OnceflowError } from "../../lib/errors";
import type { Route } from "./routes";

export class AssetNotFoundError extends OnceflowError {
  constructor(path: string) {
    super("AssetNotFound", `the console has no file '${path}'`);
  }
}

interface Asset {
  body: Buffer;
  gzipped?: Buffer;
  type: string;
  /** Hashed names (app-XXXX.js) never change: cached for a year; the page is checked every time. */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/**
 * The page's policy: its own scripts, styles and API only. `unsafe-eval`: the input editor's
 * validator (ajv) compiles the workflow's input schema into a function.
 */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** console/dist, from this module's folder up (functions/api/ locally, functions/ in the zip). */
export function findConsoleDist(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from, i = 0; i < 4; dir = dirname(dir), i++) {
    const candidate = join(dir, "console", "dist");
    if (existsSync(join(candidate, "index.html"))) return candidate;
  }
  return undefined;
}

let loaded: { dir: string; stamp: number; assets: Map<string, Asset> } | undefined;

/** The built files by name, read again when the page was rebuilt (a local stack's later build). */
function assets(): Map<string, Asset> {
  const dir = loaded?.dir ?? findConsoleDist();
  if (!dir)
    throw new Error("the console is not built (console/dist is missing): run `npm run build:console`");
  const stamp = statSync(join(dir, "index.html")).mtimeMs;
  if (loaded?.dir === dir && loaded.stamp === stamp) return loaded.assets;
  const found = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (!type) continue;
    const body = readFileSync(join(dir, name));
    found.set(name, {
      body,
      type,
      immutable: name !== "index.html",
      ...(body.length > 1024 ? { gzipped: gzipSync(body) } : {}),
    });
  }
  loaded = { dir, stamp, assets: found };
  return found;
}

function serve(event: APIGatewayProxyEventV2, name: string): APIGatewayProxyStructuredResultV2 {
  const asset = assets().get(name);
  if (!asset) throw new AssetNotFoundError(name);
  const headers: Record<string, string> = {
    "content-type": asset.type,
    "cache-control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
    vary: "accept-encoding",
    ...SECURITY_HEADERS,
  };
  const gzip = asset.gzipped && /\bgzip\b/.test(event.headers?.["accept-encoding"] ?? "");
  if (gzip) headers["content-encoding"] = "gzip";
  const body = gzip ? (asset.gzipped as Buffer) : asset.body;
  return { statusCode: 200, headers, body: body.toString("base64"), isBase64Encoded: true };
}

/** A relative redirect: it works under any base path (a custom domain's mapping, a proxy's prefix). */
const redirect =
  (location: string): Route =>
  async () => ({ statusCode: 302, headers: { location, "cache-control": "no-cache" }, body: "" });

/** Route keys as declared in serverless.yml, like routes.ts's (`{file+}`: the rest of the path, maybe empty). */
export const consoleRoutes: Record<string, Route> = {
  "GET /": redirect("console/"),
  "GET /console": redirect("console/"),
  "GET /console/{file+}": async (event, { file }) => serve(event, file || "index.html"),
};
