#!/usr/bin/env node
// The `onceflow` command (`npx onceflow --help`): cli/main.ts, run through tsx (a dependency of
// this repository, installed by `npm ci`), so that there is no build step.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");
