/**
 * How the local stack reports what it does: a tiny leveled logger that every part of the stack
 * (emulators, gateway, pollers, timers) takes as an option, so tests can silence it and `npm start`
 * can print it.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface LocalLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

const order: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger writing to the console, prefixed, dropping messages below `minLevel`. */
export function consoleLog(options: { prefix?: string; minLevel?: LogLevel } = {}): LocalLog {
  const prefix = options.prefix ?? "[local]";
  const min = order[options.minLevel ?? "info"];
  return {
    debug: (message) => {
      if (min <= order.debug) console.debug(`${prefix} ${message}`);
    },
    info: (message) => {
      if (min <= order.info) console.log(`${prefix} ${message}`);
    },
    warn: (message) => {
      if (min <= order.warn) console.warn(`${prefix} ${message}`);
    },
    error: (message, error) => {
      if (min > order.error) return;
      if (error === undefined) console.error(`${prefix} ${message}`);
      else console.error(`${prefix} ${message}`, error);
    },
  };
}

/** A logger that drops everything. */
export const silentLog: LocalLog = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
