/**
 * DynamoDB's expression language, the part onceflow uses, evaluated in memory for the simulation's
 * table: condition and key-condition expressions (comparisons, `IN`, `BETWEEN`, `AND`/`OR`/`NOT`,
 * `attribute_exists`, `attribute_not_exists`, `begins_with`, `contains`, `size`) and update expressions
 * (`SET a = b`, `a + b`, `a - b`, `if_not_exists`, `list_append`, `REMOVE` (of an attribute, or of
 * list elements `a[3], a[0]`, whose indices refer to the list before the update), `ADD` of a number). Top-level attributes, list elements and entries of a map (`m.k`) only.
 * Anything else is refused loudly rather than guessed, and so are names and
 * values that the expression does not use (DynamoDB refuses those too).
 */

export type Item = Record<string, unknown>;

export interface Placeholders {
  names?: Record<string, string>;
  values?: Record<string, unknown>;
}

export class ExpressionValidationError extends Error {
  override name = "ValidationException";
}

type Token = { kind: "name" | "alias" | "value" | "number" | "op" | "word"; text: string };

const WORDS = new Set(["AND", "OR", "NOT", "IN", "BETWEEN", "SET", "REMOVE", "ADD", "DELETE"]);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const pattern =
    /\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([A-Za-z_][A-Za-z0-9_]*)|(\d+)|(<>|<=|>=|[=<>(),+\-[\].]))/y;
  let at = 0;
  while (at < text.length) {
    if (/^\s*$/.test(text.slice(at))) break;
    pattern.lastIndex = at;
    const m = pattern.exec(text);
    if (!m) throw new ExpressionValidationError(`cannot read expression at "${text.slice(at)}"`);
    at = pattern.lastIndex;
    if (m[1]) tokens.push({ kind: "alias", text: m[1] });
    else if (m[2]) tokens.push({ kind: "value", text: m[2] });
    else if (m[3]) {
      const upper = m[3].toUpperCase();
      tokens.push(WORDS.has(upper) ? { kind: "word", text: upper } : { kind: "name", text: m[3] });
    } else if (m[4]) tokens.push({ kind: "number", text: m[4] });
    else tokens.push({ kind: "op", text: m[5] as string });
  }
  return tokens;
}

/** Operands: an attribute path, a value placeholder, or a function of them. */
type Operand =
  | { kind: "path"; name: string }
  | { kind: "value"; name: string }
  | { kind: "call"; fn: string; args: Operand[] };

type Condition =
  | { kind: "and" | "or"; left: Condition; right: Condition }
  | { kind: "not"; inner: Condition }
  | { kind: "compare"; op: string; left: Operand; right: Operand }
  | { kind: "in"; left: Operand; list: Operand[] }
  | { kind: "between"; value: Operand; low: Operand; high: Operand }
  | { kind: "call"; fn: string; args: Operand[] };

type UpdateAction =
  | { kind: "set"; path: string; value: Operand; op?: "+" | "-"; right?: Operand }
  | { kind: "remove"; path: string }
  | { kind: "add"; path: string; value: Operand };

class Parser {
  private at = 0;
  readonly usedNames = new Set<string>();
  readonly usedValues = new Set<string>();

  constructor(
    private readonly tokens: Token[],
    private readonly placeholders: Placeholders,
  ) {}

  done(): boolean {
    return this.at >= this.tokens.length;
  }

  private peek(): Token | undefined {
    return this.tokens[this.at];
  }

  private next(): Token {
    const token = this.tokens[this.at++];
    if (!token) throw new ExpressionValidationError("unexpected end of expression");
    return token;
  }

  private accept(text: string): boolean {
    if (this.peek()?.text !== text) return false;
    this.at++;
    return true;
  }

  expect(text: string): void {
    if (!this.accept(text)) throw new ExpressionValidationError(`expected "${text}" at token ${this.at}`);
  }

  condition(): Condition {
    let left = this.conjunction();
    while (this.accept("OR")) left = { kind: "or", left, right: this.conjunction() };
    return left;
  }

  private conjunction(): Condition {
    let left = this.negation();
    while (this.accept("AND")) left = { kind: "and", left, right: this.negation() };
    return left;
  }

  private negation(): Condition {
    if (this.accept("NOT")) return { kind: "not", inner: this.negation() };
    if (this.accept("(")) {
      const inner = this.condition();
      this.expect(")");
      return inner;
    }
    const left = this.operand();
    const token = this.peek();
    if (token?.text === "IN") {
      this.at++;
      this.expect("(");
      const list = [this.operand()];
      while (this.accept(",")) list.push(this.operand());
      this.expect(")");
      return { kind: "in", left, list };
    }
    if (token?.text === "BETWEEN") {
      this.at++;
      const low = this.operand();
      this.expect("AND");
      return { kind: "between", value: left, low, high: this.operand() };
    }
    if (token?.kind === "op" && ["=", "<>", "<", "<=", ">", ">="].includes(token.text)) {
      this.at++;
      return { kind: "compare", op: token.text, left, right: this.operand() };
    }
    if (left.kind === "call") return left;
    throw new ExpressionValidationError(`expected a comparison after an operand at token ${this.at}`);
  }

  operand(): Operand {
    const token = this.next();
    if (token.kind === "value") {
      if (!(token.text in (this.placeholders.values ?? {})))
        throw new ExpressionValidationError(`value ${token.text} is not defined`);
      this.usedValues.add(token.text);
      return { kind: "value", name: token.text };
    }
    if (token.kind === "name" && this.peek()?.text === "(") {
      this.at++;
      const args = [this.operand()];
      while (this.accept(",")) args.push(this.operand());
      this.expect(")");
      return { kind: "call", fn: token.text, args };
    }
    return { kind: "path", name: this.pathName(token) };
  }

  path(): string {
    return this.pathName(this.next());
  }

  /** An attribute name, or one element of a list attribute (`waiting[0]`, kept as that text). */
  private pathName(token: Token): string {
    let name: string;
    if (token.kind === "alias") {
      const aliased = this.placeholders.names?.[token.text];
      if (aliased === undefined) throw new ExpressionValidationError(`name ${token.text} is not defined`);
      this.usedNames.add(token.text);
      name = aliased;
    } else if (token.kind === "name") name = token.text;
    else throw new ExpressionValidationError(`expected an attribute name, got "${token.text}"`);
    if (this.accept(".")) {
      // one entry of a map attribute (`queued.#t0`), kept as `queued.name`
      const key = this.next();
      if (key.kind !== "alias" && key.kind !== "name")
        throw new ExpressionValidationError(`expected a map key after ${name}.`);
      return `${name}.${key.kind === "alias" ? this.pathName(key) : key.text}`;
    }
    if (!this.accept("[")) return name;
    const index = this.next();
    if (index.kind !== "number") throw new ExpressionValidationError(`expected a list index after ${name}[`);
    this.expect("]");
    return `${name}[${index.text}]`;
  }

  update(): UpdateAction[] {
    const actions: UpdateAction[] = [];
    while (!this.done()) {
      const clause = this.next().text;
      do {
        if (clause === "SET") {
          const path = this.path();
          this.expect("=");
          const value = this.operand();
          const op = this.peek()?.text;
          if (op === "+" || op === "-") {
            this.at++;
            actions.push({ kind: "set", path, value, op, right: this.operand() });
          } else actions.push({ kind: "set", path, value });
        } else if (clause === "REMOVE") actions.push({ kind: "remove", path: this.path() });
        else if (clause === "ADD") actions.push({ kind: "add", path: this.path(), value: this.operand() });
        else throw new ExpressionValidationError(`unsupported update clause "${clause}"`);
      } while (this.accept(","));
    }
    return actions;
  }
}

function typeOf(value: unknown): string {
  if (value === null) return "NULL";
  if (Array.isArray(value)) return "L";
  const types: Record<string, string> = { string: "S", number: "N", boolean: "BOOL", object: "M" };
  return types[typeof value] ?? "?";
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** `name`, `name[i]` or `name.key`, split. */
function parsePath(path: string): { name: string; index?: number; key?: string } {
  const m = /^(.*)\[(\d+)\]$/.exec(path);
  if (m) return { name: m[1] as string, index: Number(m[2]) };
  const dot = path.indexOf(".");
  return dot < 0 ? { name: path } : { name: path.slice(0, dot), key: path.slice(dot + 1) };
}

const isMap = (value: unknown): value is Item =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function getPath(item: Item | undefined, path: string): unknown {
  const { name, index, key } = parsePath(path);
  const value = item?.[name];
  if (key !== undefined) return isMap(value) ? value[key] : undefined;
  if (index === undefined) return value;
  return Array.isArray(value) ? value[index] : undefined;
}

function resolve(operand: Operand, item: Item | undefined, placeholders: Placeholders): unknown {
  switch (operand.kind) {
    case "path":
      return getPath(item, operand.name);
    case "value":
      return placeholders.values?.[operand.name];
    case "call": {
      const [first, second] = operand.args;
      if (operand.fn === "size" && first) {
        const value = resolve(first, item, placeholders);
        if (typeof value === "string") return Buffer.byteLength(value);
        if (Array.isArray(value)) return value.length;
        if (value && typeof value === "object") return Object.keys(value).length;
        return undefined;
      }
      if (operand.fn === "if_not_exists" && first?.kind === "path" && second) {
        const value = getPath(item, first.name);
        return value === undefined ? resolve(second, item, placeholders) : value;
      }
      if (operand.fn === "list_append" && first && second) {
        const [a, b] = [resolve(first, item, placeholders), resolve(second, item, placeholders)];
        if (!Array.isArray(a) || !Array.isArray(b))
          throw new ExpressionValidationError("list_append needs two lists");
        return [...a, ...b];
      }
      throw new ExpressionValidationError(`unsupported function ${operand.fn} as an operand`);
    }
  }
}

function compare(op: string, a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  if (op === "=") return same(a, b);
  if (op === "<>") return !same(a, b);
  // ordering compares numbers with numbers and strings with strings (DynamoDB: UTF-8 bytes)
  if (typeOf(a) !== typeOf(b) || (typeof a !== "number" && typeof a !== "string")) return false;
  const order =
    typeof a === "number"
      ? a - (b as number)
      : Buffer.compare(Buffer.from(a as string), Buffer.from(b as string));
  return { "<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0 }[op] ?? false;
}

function holds(condition: Condition, item: Item | undefined, p: Placeholders): boolean {
  switch (condition.kind) {
    case "and":
      return holds(condition.left, item, p) && holds(condition.right, item, p);
    case "or":
      return holds(condition.left, item, p) || holds(condition.right, item, p);
    case "not":
      return !holds(condition.inner, item, p);
    case "compare":
      return compare(condition.op, resolve(condition.left, item, p), resolve(condition.right, item, p));
    case "in": {
      const value = resolve(condition.left, item, p);
      return condition.list.some((o) => compare("=", value, resolve(o, item, p)));
    }
    case "between": {
      const value = resolve(condition.value, item, p);
      const [low, high] = [resolve(condition.low, item, p), resolve(condition.high, item, p)];
      // DynamoDB refuses the request when the bounds are the wrong way round
      if (compare(">", low, high))
        throw new ExpressionValidationError("BETWEEN: the lower bound is above the upper");
      return (
        compare(">=", value, resolve(condition.low, item, p)) &&
        compare("<=", value, resolve(condition.high, item, p))
      );
    }
    case "call": {
      const [first, second] = condition.args;
      if (!first) throw new ExpressionValidationError(`${condition.fn} needs an argument`);
      if (condition.fn === "attribute_exists" && first.kind === "path")
        return getPath(item, first.name) !== undefined;
      if (condition.fn === "attribute_not_exists" && first.kind === "path")
        return getPath(item, first.name) === undefined;
      if (condition.fn === "begins_with" && second) {
        const value = resolve(first, item, p);
        const prefix = resolve(second, item, p);
        return typeof value === "string" && typeof prefix === "string" && value.startsWith(prefix);
      }
      if (condition.fn === "contains" && second) {
        // a string containing a substring, or a list containing an element (sets are not used)
        const value = resolve(first, item, p);
        const operand = resolve(second, item, p);
        if (typeof value === "string") return typeof operand === "string" && value.includes(operand);
        return Array.isArray(value) && value.some((element) => compare("=", element, operand));
      }
      throw new ExpressionValidationError(`unsupported condition function ${condition.fn}`);
    }
  }
}

/** DynamoDB refuses a request whose placeholders are not all used by its expressions. */
function checkAllUsed(placeholders: Placeholders, parsers: Parser[]): void {
  const names = new Set(parsers.flatMap((p) => [...p.usedNames]));
  const values = new Set(parsers.flatMap((p) => [...p.usedValues]));
  for (const name of Object.keys(placeholders.names ?? {}))
    if (!names.has(name))
      throw new ExpressionValidationError(`unused name in ExpressionAttributeNames: ${name}`);
  for (const value of Object.keys(placeholders.values ?? {}))
    if (!values.has(value))
      throw new ExpressionValidationError(`unused value in ExpressionAttributeValues: ${value}`);
}

const parsed = new Map<string, { tokens: Token[] }>();
function parser(text: string, placeholders: Placeholders): Parser {
  let cached = parsed.get(text);
  if (!cached) {
    cached = { tokens: tokenize(text) };
    parsed.set(text, cached);
  }
  return new Parser(cached.tokens, placeholders);
}

/** A request's expressions, checked together (placeholders are shared between them). */
export interface Expressions {
  condition?: string;
  update?: string;
  keyCondition?: string;
}

export interface Compiled {
  /** Whether the condition (and key condition) holds on `item` (undefined: no such item). */
  holds(item: Item | undefined): boolean;
  /** The item after the update expression. */
  apply(item: Item | undefined, key: Item): Item;
  /** The attributes the update writes or removes. */
  updatedPaths: string[];
}

export function compile(expressions: Expressions, placeholders: Placeholders): Compiled {
  const parsers: Parser[] = [];
  const parseCondition = (text: string | undefined): Condition | undefined => {
    if (text === undefined) return undefined;
    const p = parser(text, placeholders);
    const condition = p.condition();
    if (!p.done()) throw new ExpressionValidationError(`unexpected text after the condition "${text}"`);
    parsers.push(p);
    return condition;
  };
  const condition = parseCondition(expressions.condition);
  const keyCondition = parseCondition(expressions.keyCondition);
  let actions: UpdateAction[] = [];
  if (expressions.update !== undefined) {
    const p = parser(expressions.update, placeholders);
    actions = p.update();
    parsers.push(p);
  }
  checkAllUsed(placeholders, parsers);
  const updatedPaths = actions.map((a) => a.path);
  if (new Set(updatedPaths).size !== updatedPaths.length)
    throw new ExpressionValidationError("two update actions on one attribute path");
  // DynamoDB: "Two document paths overlap" (a list and one of its elements in one update)
  const whole = new Set(updatedPaths.filter((path) => path === parsePath(path).name));
  for (const path of updatedPaths)
    if (path !== parsePath(path).name && whole.has(parsePath(path).name))
      throw new ExpressionValidationError(`two document paths overlap: ${path}`);

  return {
    updatedPaths,
    holds: (item) =>
      (!condition || holds(condition, item, placeholders)) &&
      (!keyCondition || holds(keyCondition, item, placeholders)),
    apply: (item, key) => {
      const after: Item = { ...(item ?? {}), ...key };
      /** List elements to remove, by list: their indices refer to the list before the update. */
      const removed = new Map<string, Set<number>>();
      for (const action of actions) {
        const { name, index, key: entry } = parsePath(action.path);
        if (name in key) throw new ExpressionValidationError(`cannot update key attribute ${action.path}`);
        if (entry !== undefined) {
          // one entry of a map: SET or REMOVE, on a map that exists (DynamoDB: "The document path
          // provided in the update expression is invalid for update")
          const map = after[name];
          if (!isMap(map) || action.kind === "add")
            throw new ExpressionValidationError(`${action.path}: the document path is invalid for update`);
          const { [entry]: _, ...rest } = map;
          after[name] =
            action.kind === "remove" ? rest : { ...map, [entry]: resolve(action.value, item, placeholders) };
          continue;
        }
        if (index !== undefined) {
          // one element of a list: only REMOVE is used (the list closes up, as in DynamoDB)
          if (action.kind !== "remove" || !Array.isArray(item?.[name]))
            throw new ExpressionValidationError(`${action.path}: only REMOVE of a list element is supported`);
          removed.set(name, (removed.get(name) ?? new Set()).add(index));
          continue;
        }
        if (action.kind === "remove") {
          delete after[action.path];
          continue;
        }
        const value = resolve(action.value, item, placeholders);
        if (action.kind === "add") {
          const current = item?.[action.path] ?? 0;
          if (typeof value !== "number" || typeof current !== "number")
            throw new ExpressionValidationError(`ADD ${action.path}: only numbers are supported`);
          after[action.path] = current + value;
          continue;
        }
        if (!action.op || !action.right) {
          if (value === undefined)
            throw new ExpressionValidationError(`SET ${action.path}: the operand refers to no attribute`);
          after[action.path] = value;
          continue;
        }
        const right = resolve(action.right, item, placeholders);
        if (typeof value !== "number" || typeof right !== "number")
          throw new ExpressionValidationError(`SET ${action.path}: ${action.op} needs two numbers`);
        after[action.path] = action.op === "+" ? value + right : value - right;
      }
      // `REMOVE waiting[3], waiting[0]`: both indices name elements of the list as it was read
      for (const [name, indices] of removed)
        after[name] = ((item?.[name] ?? []) as unknown[]).filter((_, k) => !indices.has(k));
      return after;
    },
  };
}
