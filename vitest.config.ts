import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One process per test file: each file's local stack sets its own process.env.
    pool: "forks",
    // Two files at a time: the simulation is CPU-bound while integration files mostly wait on the
    // emulators, so on two cores the suite takes about half as long (vitest would run one at a time).
    maxWorkers: 2,
    // Stopping the emulators of global-setup.ts.
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          // no emulator, seconds in all
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          // the deterministic simulation: thousands of schedules, a few minutes of CPU
          name: "sim",
          include: ["test/sim/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          // serverless.yml packaged offline (osls package) and checked
          name: "deploy",
          include: ["test/deploy/**/*.test.ts"],
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // DynamoDB Local and the SQS emulator, started once for the run.
          globalSetup: ["test/helpers/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
