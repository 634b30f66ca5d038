// The agent's drift check, run on a timer once a node is verified: do the runtime's config files
// still hold exactly what we applied, and does the running runtime still list our handlers (CRI Status)?
import { join, relative } from "node:path";
import type { Logger } from "pino";
import { CriClient } from "./cri/client.js";
import { readOrNull } from "./fsutil.js";
import type { Desired, NodeAgent } from "./apply.js";

export interface DriftFinding {
  /** Host paths that no longer hold what we wrote, each with what is missing. */
  files: Array<{ path: string; what: string }>;
  /** Desired handlers the running runtime does not list (empty when it lists them or cannot say). */
  missingHandlers: string[];
  message: string;
}

/** Handler names the running runtime knows: CRI Status runtime_handlers, else containerd's verbose `config` (1.x). null: it cannot say. */
export async function runtimeHandlers(socket: string, timeoutMs = 5_000): Promise<string[] | null> {
  const cri = new CriClient(socket);
  try {
    const r = await cri.statusVerbose(timeoutMs);
    const listed = (r.runtime_handlers ?? []).map((h) => h.name).filter(Boolean);
    if (listed.length) return listed;
    const config = r.info?.config ? (JSON.parse(r.info.config) as { containerd?: { runtimes?: Record<string, unknown> } }) : undefined;
    const runtimes = Object.keys(config?.containerd?.runtimes ?? {});
    // No handler at all, not even the default: a runtime shutting down or one that does not say.
    return runtimes.length ? runtimes : null;
  } finally {
    cri.close();
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** What a file lacks compared with what we would write: our runtime tables by handler name, import entries, or all of it. */
function describe(planned: Buffer | null, current: Buffer | null, handlers: readonly string[]): string {
  if (planned === null) return "holds a file of ours that should be gone";
  if (current === null) return "is missing";
  const want = planned.toString("utf8");
  const have = current.toString("utf8");
  const table = (h: string) => new RegExp(`runtimes\\.(${escape(h)}|"${escape(h)}")\\]`);
  const tables = handlers.filter((h) => table(h).test(want) && !table(h).test(have));
  const importLine = /^imports\s*=(.*)$/m.exec(want)?.[1] ?? "";
  const imports = [...importLine.matchAll(/"([^"]+)"/g)].map((m) => m[1]!).filter((p) => !have.includes(`"${p}"`));
  const parts = [...(tables.length ? [`our runtime table(s) ${tables.join(", ")} are gone`] : []), ...(imports.length ? [`its imports no longer list ${imports.join(", ")}`] : [])];
  return parts.length ? parts.join("; ") : "differs from what we wrote";
}

/** null when the node still runs what we applied; never writes. A runtime that does not answer CRI is no drift (the file check still runs). */
export async function findDrift(agent: NodeAgent, desired: Desired, log: Logger): Promise<DriftFinding | null> {
  const root = agent.o.hostRoot;
  const names = desired.handlers.map((h) => h.name);
  // The runtime first, then the files: a regeneration racing this check shows up in the files read last.
  let listed: string[] | null = null;
  const socket = agent.o.criSocket ?? agent.inventory?.socket;
  if (socket) listed = await runtimeHandlers(socket).catch((e: Error) => (log.warn({ err: e.message }, "drift check: CRI Status failed; checking files only"), null));
  let files: DriftFinding["files"];
  try {
    const { changes } = await agent.pendingChanges(desired);
    files = changes.map((c) => ({ path: `/${relative(root, c.path)}`, what: describe(c.content, readOrNull(c.path), names) }));
  } catch (e) {
    // A config we can no longer edit (not TOML any more, a clash) is drift too; the re-apply reports why.
    files = [{ path: "runtime config", what: `cannot be planned any more: ${(e as Error).message}` }];
  }
  const missingHandlers = listed ? names.filter((n) => !listed!.includes(n)) : [];
  if (!files.length && !missingHandlers.length) return null;
  const kind = agent.inventory?.probe.cri.kind ?? "the runtime";
  const message = [...files.map((f) => `${f.path} ${f.what}`), ...(missingHandlers.length ? [`${kind} does not list handler(s) ${missingHandlers.join(", ")} (CRI Status)`] : [])].join("; ");
  return { files, missingHandlers, message };
}

/**
 * Before re-applying: a foreign file that now carries nothing of ours was regenerated or restored
 * by someone else; its new bytes become the original a revert restores (the old backup is stale).
 */
export async function refreshBackups(agent: NodeAgent, desired: Desired): Promise<string[]> {
  // A config we cannot plan for is left as it is: the re-apply reports why.
  const planned = await agent.pendingChanges(desired).catch(() => null);
  if (!planned) return [];
  const { changes, engine } = planned;
  const refreshed: string[] = [];
  for (const c of changes) {
    const cur = readOrNull(c.path);
    if (!c.foreign || cur === null || !agent.state.backup(c.path)) continue;
    const text = cur.toString("utf8");
    if (engine.unedit(c.path, text, { runtimePath: (p) => (agent.o.configPrefix ? join(agent.o.configPrefix, p) : p) }) !== text) continue;
    agent.state.dropBackup(c.path);
    refreshed.push(c.path);
  }
  return refreshed;
}
