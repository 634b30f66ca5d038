// pino logger factory shared by every component: one root logger, one child per component,
// structured key=value fields, level from SANDBOX_LOG_LEVEL (default info).
import { pino, type Logger } from "pino";

export type { Logger };

let root: Logger | undefined;

function rootLogger(): Logger {
  root ??= pino({
    level: process.env.SANDBOX_LOG_LEVEL ?? "info",
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
  return root;
}

/** A child logger tagged with `component: name`. */
export function logger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component: name, ...bindings });
}

/** Changes the level of every logger made by logger() (children follow their root). */
export function setLogLevel(level: string): void {
  rootLogger().level = level;
}
