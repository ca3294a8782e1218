/** What the definition layer knows of callback tasks (`core.callback`), shared with the engine. */

/** The action of a task that issues a task token and waits for `POST /callbacks/{token}`. */
export const CALLBACK_ACTION = "core.callback";
/** A callback task may wait this long at most (7 days); other tasks stop at MAX_TASK_TIMEOUT_SECONDS. */
export const MAX_CALLBACK_TIMEOUT_SECONDS = 7 * 24 * 3600;
/** A callback task without `timeoutSeconds` waits one day. */
export const DEFAULT_CALLBACK_TIMEOUT_SECONDS = 24 * 3600;
