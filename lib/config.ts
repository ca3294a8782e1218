/** Where the engine's resources are. Read at call time, so the local stack can set them first. */
function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

export const config = {
  tableName: () => required("TABLE_NAME"),
  tasksQueueUrl: () => required("TASKS_QUEUE_URL"),
  completionsQueueUrl: () => required("COMPLETIONS_QUEUE_URL"),
  /** The sweeper's ticks (tick.ts). */
  sweepQueueUrl: () => required("SWEEP_QUEUE_URL"),
  /** How often the sweeper looks (tick.ts); default 5. */
  sweepEverySeconds: () => Number(process.env.SWEEP_EVERY_SECONDS ?? 5),
};
