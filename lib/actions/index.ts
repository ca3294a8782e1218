/**
 * What an action module imports: `defineAction` (an action with a JSON Schema for its input),
 * `registerAction` (a plain function), and their types. `ActionError` is in `../errors`.
 */
export { type ActionDefinition, type ActionSchema, defineAction, type SchemaType } from "./define";
export { type Action, type ActionContext, registerAction } from "./registry";
