/** The environment lib/ reads, for unit tests that mock the AWS clients (import this first). */
process.env.TABLE_NAME = "t";
process.env.TASKS_QUEUE_URL = "http://q/tasks.fifo";
process.env.COMPLETIONS_QUEUE_URL = "http://q/completions.fifo";
process.env.AWS_REGION = "us-east-1";
process.env.SWEEP_QUEUE_URL = "http://q/sweep";
