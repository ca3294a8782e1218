/**
 * Builds the web console (docs/console.md) with esbuild: console/src (TypeScript, preact) and its
 * stylesheet into console/dist (git-ignored), as `app-HASH.js`, `style-HASH.css` and the page,
 * index.html, that names them. Each file is written under a temporary name and renamed, so that a
 * server reading the folder meanwhile never sees half a file. `tsx console/build.ts` (npm run
 * build:console) builds; the local stack calls `ensureConsoleBuilt` when it starts, and
 * infra/serverless-console.cjs builds before `osls package`.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

export const consoleRoot = dirname(fileURLToPath(import.meta.url));
export const consoleDist = join(consoleRoot, "dist");
const sources = [join(consoleRoot, "src"), join(consoleRoot, "index.html"), join(consoleRoot, "build.ts")];

/** Builds the console into `outDir`; returns the names of the files written. */
export async function buildConsole({ outDir = consoleDist, minify = true } = {}): Promise<string[]> {
  const result = await build({
    entryPoints: { app: join(consoleRoot, "src", "main.tsx"), style: join(consoleRoot, "src", "style.css") },
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["chrome111", "firefox115", "safari16.4"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify,
    legalComments: "none",
    entryNames: "[name]-[hash]",
    outdir: outDir,
    write: false,
    logLevel: "silent",
  });
  const outputs = result.outputFiles.map((file) => ({ name: basename(file.path), contents: file.contents }));
  const named = (ending: string) => outputs.find((o) => o.name.endsWith(ending))?.name ?? "";
  const page = readFileSync(join(consoleRoot, "index.html"), "utf8")
    .replace("%APP_JS%", named(".js"))
    .replace("%STYLE_CSS%", named(".css"));
  // the page last: it names the others
  const files = [...outputs, { name: "index.html", contents: new TextEncoder().encode(page) }];
  mkdirSync(outDir, { recursive: true });
  for (const { name, contents } of files) {
    const temporary = join(outDir, `.${name}.${process.pid}.tmp`);
    writeFileSync(temporary, contents);
    renameSync(temporary, join(outDir, name));
  }
  const written = new Set(files.map((f) => f.name));
  for (const name of readdirSync(outDir))
    if (!written.has(name) && !name.endsWith(".tmp")) rmSync(join(outDir, name), { force: true });
  return [...written];
}

function newestChange(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestChange(join(path, name))));
}

/** Builds the console unless console/dist is newer than every source file; true when it built. */
export async function ensureConsoleBuilt(): Promise<boolean> {
  const page = join(consoleDist, "index.html");
  if (existsSync(page) && statSync(page).mtimeMs >= Math.max(...sources.map(newestChange))) return false;
  await buildConsole();
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now();
  buildConsole().then(
    (files) =>
      console.log(`console built into ${consoleDist} in ${Date.now() - started} ms: ${files.join(", ")}`),
    (error) => {
      console.error("could not build the console:", error instanceof Error ? error.message : error);
      process.exit(1);
    },
  );
}
