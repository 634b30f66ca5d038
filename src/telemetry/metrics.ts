// A private prom-client registry per process (never the global one, so tests and several
// components in one process do not collide), with the default process metrics registered.
import { Registry, collectDefaultMetrics } from "prom-client";

export function newRegistry(opts: { defaultMetrics?: boolean; prefix?: string } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: opts.prefix ?? "sandbox_operator_" });
  return registry;
}
