// The agent's liveness decision, pure: alive while its SandboxNode watch is (or was lately)
// connected and no reconcile pass has run past its bound; a long apply alone never fails it.

export interface HealthInput {
  now: number;
  /** A watch stream is open now (the apiserver answered it and it has not ended). */
  watchOpen: boolean;
  /** Last time the apiserver answered the loop: a list, a watch opened, an event or bookmark, or an open watch ended. */
  lastContactAt: number;
  /** Why the last list/watch failed, if it did. */
  lastWatchError?: string;
  /** When the reconcile pass running now started (an apply: restart, image pull, verification). */
  passStartedAt?: number;
}

export interface HealthLimits {
  /** The watch counts as dead when it has been closed and the apiserver unreachable for this long. */
  watchDeadAfterMs: number;
  /** A single pass longer than this is stuck (restart plus image pull plus verification take minutes, not this). */
  passStuckAfterMs: number;
}

export const DEFAULT_HEALTH_LIMITS: HealthLimits = { watchDeadAfterMs: 120_000, passStuckAfterMs: 30 * 60_000 };

export interface Health {
  healthy: boolean;
  /** One line for the /healthz body and the log. */
  message: string;
}

const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

export function decideHealth(h: HealthInput, limits: HealthLimits = DEFAULT_HEALTH_LIMITS): Health {
  const sinceContact = h.now - h.lastContactAt;
  if (!h.watchOpen && sinceContact > limits.watchDeadAfterMs) {
    return { healthy: false, message: `SandboxNode watch down for ${secs(sinceContact)} (limit ${secs(limits.watchDeadAfterMs)})${h.lastWatchError ? `: ${h.lastWatchError}` : ""}` };
  }
  if (h.passStartedAt !== undefined && h.now - h.passStartedAt > limits.passStuckAfterMs) {
    return { healthy: false, message: `a reconcile pass has run for ${secs(h.now - h.passStartedAt)} (limit ${secs(limits.passStuckAfterMs)}): stuck` };
  }
  const watch = h.watchOpen ? "watch open" : `watch reconnecting for ${secs(sinceContact)}`;
  return { healthy: true, message: h.passStartedAt !== undefined ? `${watch}; applying for ${secs(h.now - h.passStartedAt)}` : watch };
}
