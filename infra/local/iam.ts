/**
 * The functions' IAM roles, enforced on the local stack. Every DynamoDB and SQS call a handler
 * makes through the engine's clients is checked against the statements of its function's role in
 * serverless.yml (the tables and queues the stack created standing in for their ARNs), and refused
 * as AWS would refuse it. So a grant missing from serverless.yml fails the tests and `npm start`,
 * not the first deploy. Calls made outside a handler (the stack itself, the pollers, tests) are not
 * checked; nor are statements whose resources the stack does not create (log groups).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { db, sqs } from "../../lib/clients";
import { type CreatedResources, resolveIntrinsics } from "./resources";
import type { ServerlessConfig } from "./serverless-config";

/** A call refused: the function, the IAM action and the resource. */
export interface Denial {
  fn: string;
  action: string;
  resource: string;
}

export class AccessDenied extends Error {
  constructor(readonly denial: Denial) {
    super(
      `${denial.fn} is not allowed ${denial.action} on ${denial.resource} (its role in serverless.yml grants no such call)`,
    );
    this.name = "AccessDeniedException";
  }
}

interface Grant {
  action: string;
  resource: string;
}

interface Statement {
  Effect?: string;
  Action?: string | string[];
  Resource?: unknown;
}

/** The IAM action of each low-level command the engine sends (a TransactWriteItems: per item, below). */
const ACTIONS: Record<string, string> = {
  GetItemCommand: "dynamodb:GetItem",
  PutItemCommand: "dynamodb:PutItem",
  UpdateItemCommand: "dynamodb:UpdateItem",
  DeleteItemCommand: "dynamodb:DeleteItem",
  QueryCommand: "dynamodb:Query",
  ScanCommand: "dynamodb:Scan",
  BatchGetItemCommand: "dynamodb:BatchGetItem",
  BatchWriteItemCommand: "dynamodb:BatchWriteItem",
  TransactGetItemsCommand: "dynamodb:GetItem",
  SendMessageCommand: "sqs:SendMessage",
  SendMessageBatchCommand: "sqs:SendMessage",
  ChangeMessageVisibilityCommand: "sqs:ChangeMessageVisibility",
  ChangeMessageVisibilityBatchCommand: "sqs:ChangeMessageVisibility",
  ReceiveMessageCommand: "sqs:ReceiveMessage",
  DeleteMessageCommand: "sqs:DeleteMessage",
  DeleteMessageBatchCommand: "sqs:DeleteMessage",
  GetQueueAttributesCommand: "sqs:GetQueueAttributes",
};

/** The action of each kind of item of a TransactWriteItems (IAM authorizes a transaction item by item). */
const TRANSACT_ACTIONS: Record<string, string> = {
  Put: "dynamodb:PutItem",
  Update: "dynamodb:UpdateItem",
  Delete: "dynamodb:DeleteItem",
  ConditionCheck: "dynamodb:ConditionCheckItem",
};

const MIDDLEWARE = "onceflowLocalIam";

export class LocalIam {
  readonly denied: Denial[] = [];
  private readonly grants = new Map<string, Grant[]>();
  private readonly current = new AsyncLocalStorage<string>();
  private readonly tableArns = new Map<string, string>();
  private readonly queueArns = new Map<string, string>();

  constructor(config: ServerlessConfig, created: CreatedResources) {
    for (const resource of Object.values(created)) {
      if (resource.type === "AWS::DynamoDB::Table") this.tableArns.set(resource.name, resource.arn);
      else this.queueArns.set(resource.url, resource.arn);
    }
    for (const fn of Object.values(config.functions)) {
      const role = fn.role ? config.resources.Resources[fn.role] : undefined;
      this.grants.set(fn.name, role ? grantsOf(role.Properties, created) : []);
    }
    const middleware =
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => (args: unknown) => {
        const fn = this.current.getStore();
        const grants = fn === undefined ? undefined : this.grants.get(fn);
        if (fn !== undefined && grants?.length) {
          const input = (args as { input: Record<string, unknown> }).input;
          for (const wanted of this.wanted(String(context.commandName), input)) {
            const granted = grants.some((g) => g.action === wanted.action && g.resource === wanted.resource);
            if (!granted) {
              const denial = { fn, ...wanted };
              this.denied.push(denial);
              throw new AccessDenied(denial);
            }
          }
        }
        return next(args);
      };
    const placement = { step: "initialize", name: MIDDLEWARE, override: true } as const;
    db().middlewareStack.add(middleware as never, placement);
    sqs().middlewareStack.add(middleware as never, placement);
  }

  /** The function's handler, its calls checked against its role. */
  wrap<H extends (...args: never[]) => unknown>(fn: string, handler: H): H {
    return ((...args: never[]) => this.current.run(fn, () => handler(...args))) as H;
  }

  /** Takes the check off the engine's clients (they outlive the stack in tests). */
  close(): void {
    db().middlewareStack.remove(MIDDLEWARE);
    sqs().middlewareStack.remove(MIDDLEWARE);
  }

  /** What a call needs: an action on a resource, one a transaction item. */
  private wanted(command: string, input: Record<string, unknown>): Grant[] {
    const table = (name: unknown) => this.tableArns.get(String(name)) ?? `table ${String(name)}`;
    if (command === "TransactWriteItemsCommand") {
      return ((input.TransactItems ?? []) as Record<string, { TableName?: string }>[]).map((item) => {
        const [kind, body] = Object.entries(item)[0] ?? ["?", {}];
        return { action: TRANSACT_ACTIONS[kind] ?? `dynamodb:${kind}`, resource: table(body?.TableName) };
      });
    }
    const action = ACTIONS[command] ?? `unknown:${command}`;
    if (command === "BatchGetItemCommand")
      return Object.keys((input.RequestItems ?? {}) as object).map((name) => ({
        action,
        resource: table(name),
      }));
    if (command === "TransactGetItemsCommand")
      return ((input.TransactItems ?? []) as { Get?: { TableName?: string } }[]).map((item) => ({
        action,
        resource: table(item.Get?.TableName),
      }));
    if (action.startsWith("sqs:")) {
      const url = String(input.QueueUrl);
      return [{ action, resource: this.queueArns.get(url) ?? `queue ${url}` }];
    }
    const resource = table(input.TableName);
    return [
      { action, resource: input.IndexName ? `${resource}/index/${String(input.IndexName)}` : resource },
    ];
  }
}

/** Every (action, resource) an IAM role's inline policies allow, among the resources the stack created. */
function grantsOf(properties: Record<string, unknown> | undefined, created: CreatedResources): Grant[] {
  const grants: Grant[] = [];
  const policies = (properties?.Policies ?? []) as { PolicyDocument?: { Statement?: Statement[] } }[];
  for (const statement of policies.flatMap((p) => p.PolicyDocument?.Statement ?? [])) {
    if (statement.Effect !== "Allow") continue;
    const actions = [statement.Action ?? []].flat();
    for (const resource of [statement.Resource ?? []].flat()) {
      let arn: string;
      try {
        arn = String(resolveIntrinsics(resource, created));
      } catch {
        continue; // a resource the local stack does not create (a log group)
      }
      for (const action of actions) grants.push({ action, resource: arn });
    }
  }
  return grants;
}
