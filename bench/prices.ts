/**
 * On-demand list prices, us-east-1, in USD, as read on 2026-11-28. Check the pages before relying
 * on them: prices change, and other regions differ.
 *
 * - DynamoDB on-demand: $0.625 per million write request units and $0.125 per million read request
 *   units, the prices since AWS halved on-demand throughput prices on 2024-11-01
 *   (https://aws.amazon.com/dynamodb/pricing/on-demand/; the page's figures were confirmed from
 *   secondary sources quoting it, not from the page itself).
 * - SQS FIFO: $0.50 per million requests (each 64 KB of a request's payload is one request; onceflow's
 *   messages are far smaller). The free million a month is not deducted.
 *   (https://aws.amazon.com/sqs/pricing/)
 * - Lambda on arm64: $0.20 per million requests and $0.0000133334 per GB-second (first 7.5 billion
 *   GB-s a month). (https://aws.amazon.com/lambda/pricing/)
 * - API Gateway HTTP API: $1.00 per million requests (first 300 million a month); from memory, dated
 *   as above. (https://aws.amazon.com/api-gateway/pricing/)
 * - Step Functions Standard: $0.025 per 1,000 state transitions, i.e. $25 per million
 *   (https://aws.amazon.com/step-functions/pricing/, read from the page).
 */
export const PRICES = {
  asOf: "2026-11-28",
  region: "us-east-1",
  dynamodbUsdPerMillionWriteUnits: 0.625,
  dynamodbUsdPerMillionReadUnits: 0.125,
  sqsFifoUsdPerMillionRequests: 0.5,
  lambdaUsdPerMillionRequests: 0.2,
  lambdaArmUsdPerGbSecond: 0.0000133334,
  httpApiUsdPerMillionRequests: 1.0,
  stepFunctionsStandardUsdPerThousandTransitions: 0.025,
} as const;

/** What one task execution uses, on average. */
export interface PerTask {
  readUnits: number;
  writeUnits: number;
  sqsRequests: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  apiRequests: number;
}

/** USD per million task executions, by service and in total. */
export function usdPerMillionTasks(perTask: PerTask) {
  const dynamodb =
    perTask.readUnits * PRICES.dynamodbUsdPerMillionReadUnits +
    perTask.writeUnits * PRICES.dynamodbUsdPerMillionWriteUnits;
  const sqs = perTask.sqsRequests * PRICES.sqsFifoUsdPerMillionRequests;
  const lambda =
    perTask.lambdaInvocations * PRICES.lambdaUsdPerMillionRequests +
    perTask.lambdaGbSeconds * 1_000_000 * PRICES.lambdaArmUsdPerGbSecond;
  const api = perTask.apiRequests * PRICES.httpApiUsdPerMillionRequests;
  return { dynamodb, sqs, lambda, api, total: dynamodb + sqs + lambda + api };
}

/**
 * Step Functions Standard for the same shape, per million task executions: it counts a state
 * transition each time a step of the workflow is executed, so a run of `tasks` Task states plus
 * `otherStates` (a Map state, say) costs that many transitions.
 */
export function stepFunctionsStandardUsdPerMillion(tasks: number, otherStates: number): number {
  const transitionsPerTask = (tasks + otherStates) / tasks;
  return transitionsPerTask * PRICES.stepFunctionsStandardUsdPerThousandTransitions * 1000;
}

/**
 * The floor of each shape on these primitives, per task execution: the fewest requests any
 * exactly-once executor built on DynamoDB, SQS FIFO and Lambda would make, each write a single item
 * of at most 1 KB. A model, not a measurement; the bench prints it beside what onceflow measured.
 *
 * - fan-out item: 3 writes (its creation, its claim, its result) + one fan-in counter update per 10
 *   items; 2.5 FIFO requests (its send, in batches of 10, its receive and its delete); 0.2 Lambda
 *   invocations (a worker taking 5 items a batch).
 * - run of one task: 4 writes (the run with its task, the claim, the result, the run's end); 2.5
 *   FIFO requests; 2 Lambda invocations and 1 HTTP API request (the API call that starts it, and
 *   the worker).
 * - chain of 5: per task 3 writes (its creation, claim and result) and 2 per run (its creation and
 *   end, so 0.4); per run 2.5 FIFO requests and 1 worker invocation (0.5 and 0.2: a worker runs
 *   the next task of the chain itself, with no message), and 1 API call (0.2).
 * - run of one task with a 10 KB output: a run of one task, its result written once at 11 units
 *   (10 KB and the item), and the run's end with that output as its own (11 more).
 */
export const FLOORS: Record<"fanout" | "plain" | "chain" | "large", PerTask> = {
  fanout: {
    readUnits: 0,
    writeUnits: 3.1,
    sqsRequests: 2.5,
    lambdaInvocations: 0.2,
    lambdaGbSeconds: 0,
    apiRequests: 0,
  },
  plain: {
    readUnits: 0,
    writeUnits: 4,
    sqsRequests: 2.5,
    lambdaInvocations: 2,
    lambdaGbSeconds: 0,
    apiRequests: 1,
  },
  chain: {
    readUnits: 0,
    writeUnits: 3.4,
    sqsRequests: 0.5,
    lambdaInvocations: 0.4,
    lambdaGbSeconds: 0,
    apiRequests: 0.2,
  },
  large: {
    readUnits: 0,
    writeUnits: 24,
    sqsRequests: 2.5,
    lambdaInvocations: 2,
    lambdaGbSeconds: 0,
    apiRequests: 1,
  },
};
