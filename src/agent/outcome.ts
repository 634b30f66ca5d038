// What an apply or revert ended with, and the pure pieces that build it: isolation checks on the
// verification results, handler status, the next owned state, and how a thrown error is reported.
import type { DesiredHandler, HandlerStatus, SandboxNodeSpec } from "../api/sandboxnode.js";
import { sha256 } from "./fsutil.js";
import { RuntimeRestartError } from "./restart.js";
import type { FileChange, OwnedState } from "./txn.js";
import type { VerifyResult } from "./verify.js";

export type Desired = NonNullable<SandboxNodeSpec["desired"]>;

export interface Outcome {
  ok: boolean;
  phase: "Applied" | "Failed" | "Reverted";
  reason: "Verified" | "VerificationFailed" | "VerificationImagePullFailed" | "ApplyFailed" | "RuntimeRestartFailed" | "RuntimeNotFound" | "Reverted" | "PayloadInstallFailed" | "PayloadInUse" | "HandlerInUse";
  message: string;
  /** The failure may go away by itself (a restart that failed, a lock held): the loop retries with backoff. */
  retry?: boolean;
  handlers: HandlerStatus[];
  restarted: boolean;
  /** What changed on disk (paths), for logs and tests. */
  changed: string[];
  durationMs: number;
}

/** A handler's sandbox must really be isolated: gVisor shows its own kernel log, Kata a guest kernel. */
export function checkIsolation(r: VerifyResult, h: { name: string; backend?: DesiredHandler["backend"] }, hostKernel: string | undefined): VerifyResult {
  if (!r.ok || !h.backend) return r;
  if (h.backend === "gvisor" && !/gVisor/i.test(r.dmesg ?? "")) {
    return { ...r, ok: false, message: `handler ${h.name} ran, but the container's kernel log does not show gVisor (kernel ${r.kernel}, dmesg "${r.dmesg}"): the handler is not sandboxed` };
  }
  if (h.backend !== "gvisor" && hostKernel && r.kernel === hostKernel) {
    return { ...r, ok: false, message: `handler ${h.name} ran on the host kernel ${r.kernel}: not a Kata guest` };
  }
  return r;
}

export function verifiedStatus(handlers: readonly DesiredHandler[], results: VerifyResult[]): HandlerStatus[] {
  return handlers.map((h) => {
    const r = results.find((x) => x.handler === h.name);
    return { name: h.name, backend: h.backend, verified: !!r?.ok, kernel: r?.kernel ? `${r.kernel}${r.dmesg ? ` (${r.dmesg})` : ""}` : undefined, message: r?.ok ? undefined : (r?.message ?? "not verified (an earlier step failed)") };
  });
}

export function handlerStatus(handlers: readonly DesiredHandler[], known: OwnedState["handlers"]): HandlerStatus[] {
  return handlers.map((h) => ({ name: h.name, backend: h.backend, verified: true, kernel: known.find((k) => k.name === h.name)?.kernel }));
}

export function nextState(st: OwnedState | null, desired: Desired, changes: FileChange[], results: VerifyResult[], originalExisted: (p: string) => boolean, createdDirs: readonly string[] = []): OwnedState {
  const owned = new Set(st?.owned ?? []);
  const edited = new Map((st?.edited ?? []).map((e) => [e.path, e]));
  const dirs = [...new Set([...(st?.dirs ?? []), ...createdDirs])].sort((a, b) => b.length - a.length);
  for (const c of changes) {
    if (c.foreign) {
      const prev = edited.get(c.path);
      edited.set(c.path, { path: c.path, existed: prev?.existed ?? originalExisted(c.path), wroteSha: c.content ? sha256(c.content) : "" });
    } else if (c.content === null) owned.delete(c.path);
    else owned.add(c.path);
  }
  return {
    appliedHash: desired.hash,
    owned: [...owned].sort(),
    edited: [...edited.values()],
    handlers: results.map((r) => ({ name: r.handler, backend: desired.handlers.find((h) => h.name === r.handler)!.backend, kernel: r.kernel ? `${r.kernel}${r.dmesg ? ` (${r.dmesg})` : ""}` : undefined })),
    ...(dirs.length ? { dirs } : {}),
  };
}

/** The reason a thrown error reports: a restart that failed, or anything else that stopped the change. */
export function failureReason(e: unknown): "RuntimeRestartFailed" | "ApplyFailed" {
  return e instanceof RuntimeRestartError ? "RuntimeRestartFailed" : "ApplyFailed";
}

export function unexpected(e: unknown, op: "apply" | "revert", started: number): Outcome {
  const message = `${op} stopped before it could finish: ${(e as Error).message}`;
  return { ...outcome(false, "Failed", failureReason(e), message, [], false, [], started), retry: true };
}

export function outcome(ok: boolean, phase: Outcome["phase"], reason: Outcome["reason"], message: string, handlers: HandlerStatus[], restarted: boolean, changed: string[], started: number): Outcome {
  return { ok, phase, reason, message, handlers, restarted, changed, durationMs: Date.now() - started };
}
