// The apply/revert protocol on one node: render -> compare bytes -> journal -> atomic writes ->
// restart only if a runtime config changed -> wait for CRI -> verify every handler through CRI ->
// commit, or restore the previous bytes, restart and report. A crash anywhere rolls back next start.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { DesiredHandler, HandlerStatus, Probe, SandboxNodeSpec } from "../api/sandboxnode.js";
import { CriClient, waitCriReady } from "./cri/client.js";
import type { Engine } from "./engines/engine.js";
import { ContainerdEngine } from "./engines/containerd/engine.js";
import { CrioEngine } from "./engines/crio/engine.js";
import { atomicWrite, readOrNull, removeFile, sha256 } from "./fsutil.js";
import { renderRunscConfig } from "./gvisor/render.js";
import { renderKataConfigs } from "./kata/render.js";
import { runscConfigPath, type Layout } from "./layout.js";
import { probeHostDetailed, type HostInventory } from "./probe/probe.js";
import type { Restarter } from "./restart.js";
import { HostLock, StateDir, type FileChange, type JournalEntry, type OwnedState } from "./txn.js";
import { cleanupVerifySandboxes, verifyHandler, type VerifyResult } from "./verify.js";

export type Desired = NonNullable<SandboxNodeSpec["desired"]>;
/** Called as the apply moves on, so the status can say so; errors in it do not stop the apply. */
export type PhaseHook = (phase: "Verifying" | "RollingBack") => Promise<void>;

export interface NodeAgentOptions {
  hostRoot: string;
  /** CRI socket as this process sees it (default: probed under hostRoot). */
  criSocket?: string;
  /** Binaries the agent ships (runsc, containerd-shim-runsc-v1), installed under /opt/sandbox-operator/bin. */
  payloadDir?: string;
  restarter: Restarter;
  /** Prefix the runtime needs in front of host paths written into its configs ("" on a real host; the host root in tests). */
  configPrefix?: string;
  /** Extra runsc flags (runsc.toml [runsc_config]), e.g. { network: "none" } where netstack cannot run. */
  runscFlags?: Record<string, string>;
  /** Image the verification container runs (needs /bin/sh, uname, dmesg). */
  verifyImage: string;
  containerdBinary?: string;
  /** Host process whose mount namespace host commands run in (`containerd config default` fallback); default 1. */
  hostPid?: number;
  kataDir?: string;
  log: Logger;
  /** Fault injection for crash tests only (test/node/fixtures/apply-once.ts): the process SIGKILLs itself at this step. */
  fault?: string;
}

export interface Outcome {
  ok: boolean;
  phase: "Applied" | "Failed" | "Reverted";
  reason: "Verified" | "VerificationFailed" | "ApplyFailed" | "RuntimeNotFound" | "Reverted";
  message: string;
  handlers: HandlerStatus[];
  restarted: boolean;
  /** What changed on disk (paths), for logs and tests. */
  changed: string[];
  durationMs: number;
}

const VERIFY_LOG_DIR = "/var/log/sandbox-operator/verify";
const BIN_NAMES = ["runsc", "containerd-shim-runsc-v1"];

export class NodeAgent {
  readonly state: StateDir;
  private readonly lock: HostLock;
  inventory?: HostInventory;

  constructor(readonly o: NodeAgentOptions) {
    this.state = new StateDir(o.hostRoot);
    this.lock = new HostLock(this.state);
  }

  private fault(step: string): void {
    if (this.o.fault === step) {
      this.o.log.warn({ step }, "fault injection: killing the agent");
      process.kill(process.pid, "SIGKILL");
    }
  }

  private local = (hostPath: string) => join(this.o.hostRoot, hostPath);
  private runtimePath = (hostPath: string) => (this.o.configPrefix ? join(this.o.configPrefix, hostPath) : hostPath);

  /** Probes the host; KVM's test guest boots only on the first probe of this process. */
  async probe(): Promise<Probe> {
    this.inventory = await probeHostDetailed({ hostRoot: this.o.hostRoot, criSocket: this.o.criSocket, payloadDir: this.o.payloadDir, kataDir: this.o.kataDir, kvm: this.inventory?.probe.kvm });
    return this.inventory.probe;
  }

  private socket(): string {
    const s = this.o.criSocket ?? this.inventory?.socket;
    if (!s) throw new Error("no CRI socket answered under the host root; pass --cri-socket");
    return s;
  }

  private engine(inv: HostInventory): Engine {
    if (inv.probe.cri.kind === "crio") return new CrioEngine(this.o.hostRoot);
    const major = Number((inv.probe.cri.version ?? "1").split(".")[0]) || 1;
    return new ContainerdEngine({ hostRoot: this.o.hostRoot, major, containerdBinary: this.o.containerdBinary, hostPid: this.o.hostPid });
  }

  private runtimeLayout(l: Layout): Layout {
    const r = this.runtimePath;
    return { ...l, installDir: r(l.installDir), kataDir: r(l.kataDir), runsc: r(l.runsc), gvisorShim: r(l.gvisorShim), kataShim: r(l.kataShim), runscFlags: { ...(this.o.runscFlags ?? {}) } };
  }

  /** Every file the desired handlers need: CRI config, Kata configs, runsc.toml, shipped binaries; stale files of ours removed. */
  private plan(desired: Desired, inv: HostInventory, engine: Engine, st: OwnedState | null): FileChange[] {
    const handlers = desired.handlers;
    const rl = this.runtimeLayout(inv.layout);
    const changes = engine.plan({ handlers, allowedAnnotations: desired.allowedAnnotations ?? [], runtimeLayout: rl, runtimePath: this.runtimePath });
    const hostLayout = inv.layout;
    // Where Kata files go is a host path; what they reference is in the runtime's view.
    const kataOpts = { arch: inv.probe.arch, allowedAnnotations: desired.allowedAnnotations };
    const kataAt = renderKataConfigs(handlers, { ...kataOpts, layout: hostLayout });
    const kataContent = renderKataConfigs(handlers, { ...kataOpts, layout: rl });
    kataAt.forEach((f, i) => changes.push({ path: this.local(f.path), content: Buffer.from(kataContent[i]!.content), foreign: false, restart: false }));
    if (handlers.some((h) => h.backend === "gvisor")) {
      changes.push({ path: this.local(runscConfigPath(hostLayout)), content: Buffer.from(renderRunscConfig(rl)), foreign: false, restart: false });
      if (inv.shipsGvisor) {
        for (const name of BIN_NAMES) {
          changes.push({ path: this.local(`${hostLayout.installDir}/bin/${name}`), content: readFileSync(join(this.o.payloadDir!, name)), mode: 0o755, foreign: false, restart: false });
        }
      }
    }
    // Files we wrote earlier that this desired state no longer needs.
    const wanted = new Set(changes.map((c) => c.path));
    for (const p of st?.owned ?? []) if (!wanted.has(p)) changes.push({ path: p, content: null, foreign: false, restart: p.includes("/containerd/") || p.includes("/crio/") });
    return changes;
  }

  private static differs(c: FileChange): boolean {
    const cur = readOrNull(c.path);
    if (c.content === null) return cur !== null;
    return cur === null || !cur.equals(c.content);
  }

  /** Finishes what a crashed run left: rolls the interrupted transaction back. Returns what it did, or null. */
  async recover(): Promise<string | null> {
    const j = this.state.journal();
    if (!j) return null;
    const changed = this.state.rollbackFiles(j);
    // Before "restarting" the runtime still runs the old config, which the files now match again.
    const restart = j.step === "restarting" || j.step === "restarted" || j.step === "verifying";
    this.o.log.warn({ op: j.op, hash: j.hash, step: j.step, filesRestored: changed, restart }, "rolling back a transaction interrupted by a crash");
    if (restart) await this.restartAndWait();
    this.state.end();
    try {
      const cri = new CriClient(this.socket());
      await cleanupVerifySandboxes(cri).finally(() => cri.close());
    } catch {
      // Runtime down: nothing to clean that it could show us.
    }
    return `rolled back an interrupted ${j.op} of ${j.hash} (crashed at step ${j.step})`;
  }

  private async restartAndWait(): Promise<void> {
    const kind = this.inventory?.probe.cri.kind === "crio" ? "crio" : "containerd";
    await this.o.restarter.restart(kind);
    await waitCriReady(this.socket(), 60_000);
  }

  private writeAll(j: JournalEntry, changes: FileChange[]): void {
    for (const c of changes) {
      if (c.foreign) this.state.backupOnce(c.path);
    }
    let n = 0;
    for (const c of changes) {
      if (c.content === null) removeFile(c.path);
      else atomicWrite(c.path, c.content, c.mode ?? 0o644);
      if (++n === 1) this.fault("mid-write");
    }
    this.state.step(j, "written");
  }

  /** Verifies handlers through CRI; a handler without a backend (the runtime's default, "") is only run, not checked for isolation. */
  private async verifyAll(handlers: ReadonlyArray<{ name: string; backend?: DesiredHandler["backend"] }>, hostKernel: string | undefined): Promise<VerifyResult[]> {
    const cri = new CriClient(this.socket());
    const logDir = { local: this.local(VERIFY_LOG_DIR), runtime: this.runtimePath(VERIFY_LOG_DIR) };
    try {
      const image = await this.ensureImage(cri);
      const results: VerifyResult[] = [];
      for (const h of handlers) {
        const r = await verifyHandler({ cri, handler: h.name, image, logDir });
        results.push(checkIsolation(r, h, hostKernel));
        this.o.log.info({ handler: h.name, backend: h.backend, ok: r.ok, kernel: r.kernel, dmesg: r.dmesg, ms: r.durationMs, message: r.message }, "verified handler");
      }
      return results;
    } finally {
      cri.close();
    }
  }

  private async ensureImage(cri: CriClient): Promise<string> {
    if (await cri.imageStatus(this.o.verifyImage)) return this.o.verifyImage;
    this.o.log.info({ image: this.o.verifyImage }, "pulling the verification image");
    await cri.pullImage(this.o.verifyImage);
    return this.o.verifyImage;
  }

  /** At agent start: take the lock once and finish (roll back) whatever a crashed run left. */
  async startup(): Promise<string | null> {
    this.lock.acquire();
    try {
      return await this.recover();
    } finally {
      this.lock.release();
    }
  }

  async apply(desired: Desired, onPhase: PhaseHook = async () => undefined): Promise<Outcome> {
    const started = Date.now();
    this.lock.acquire();
    try {
      await this.recover();
      await this.probe();
      const fresh = this.inventory!;
      if (fresh.probe.cri.kind === "unknown") return outcome(false, "Failed", "RuntimeNotFound", "no containerd or CRI-O found on the node (no CRI socket answered, no binary installed)", [], false, [], started);
      const engine = this.engine(fresh);
      const st = this.state.state();
      let changes: FileChange[];
      try {
        changes = this.plan(desired, fresh, engine, st).filter(NodeAgent.differs);
      } catch (e) {
        return outcome(false, "Failed", "ApplyFailed", `${engine.describe}: ${(e as Error).message}`, [], false, [], started);
      }
      if (changes.length === 0 && st?.appliedHash === desired.hash) {
        this.o.log.info({ hash: desired.hash }, "node already runs this configuration; nothing written, no restart");
        return outcome(true, "Applied", "Verified", "already applied", handlerStatus(desired.handlers, st.handlers), false, [], started);
      }
      const restart = changes.some((c) => c.restart);
      this.o.log.info({ hash: desired.hash, engine: engine.describe, files: changes.map((c) => c.path), restart }, "applying");
      const j = this.state.begin("apply", desired.hash, changes.map((c) => c.path));
      let results: VerifyResult[] = [];
      let failure: { reason: "ApplyFailed" | "VerificationFailed"; message: string } | undefined;
      try {
        this.writeAll(j, changes);
        this.fault("after-write");
        if (restart) {
          this.state.step(j, "restarting");
          await this.restartAndWait();
          this.state.step(j, "restarted");
          this.fault("after-restart");
        }
      } catch (e) {
        failure = { reason: "ApplyFailed", message: (e as Error).message };
      }
      if (!failure) {
        this.state.step(j, "verifying");
        await onPhase("Verifying");
        results = await this.verifyAll(desired.handlers, fresh.probe.kernel);
        const bad = results.filter((r) => !r.ok);
        if (bad.length) failure = { reason: "VerificationFailed", message: bad.map((r) => `handler ${r.handler}: ${r.message}`).join("; ") };
      }
      if (failure) {
        this.o.log.error({ hash: desired.hash, reason: failure.reason, message: failure.message }, "apply failed; restoring the previous files");
        await onPhase("RollingBack");
        this.state.rollbackFiles(j);
        if (restart) await this.restartAndWait().catch((e: Error) => (failure!.message += `; restarting after rollback failed: ${e.message}`));
        this.state.end();
        this.state.saveState(st ? { ...st, failedHash: desired.hash, failedMessage: failure.message } : null);
        // Nothing of ours remains: a backup kept now would go stale if the admin edits the file later.
        if (!st) for (const c of changes) if (c.foreign) this.state.dropBackup(c.path);
        return outcome(false, "Failed", failure.reason, failure.message, verifiedStatus(desired.handlers, results), restart, changes.map((c) => c.path), started);
      }
      this.state.saveState(nextState(st, desired, changes, results, (p) => this.state.backup(p)?.existed ?? true));
      this.state.end();
      return outcome(true, "Applied", "Verified", `${desired.handlers.length} handler(s) verified`, verifiedStatus(desired.handlers, results), restart, changes.map((c) => c.path), started);
    } finally {
      this.lock.release();
    }
  }

  async revert(): Promise<Outcome> {
    const started = Date.now();
    this.lock.acquire();
    try {
      await this.recover();
      if (!this.inventory) await this.probe();
      const inv = this.inventory!;
      const st = this.state.state();
      if (!st) return outcome(true, "Reverted", "Reverted", "nothing of ours on this node", [], false, [], started);
      const engine = this.engine(inv);
      const changes: FileChange[] = [];
      for (const p of st.owned) changes.push({ path: p, content: null, foreign: false, restart: p.includes("/containerd/") || p.includes("/crio/") });
      for (const e of st.edited) {
        const b = this.state.backup(e.path);
        const cur = readOrNull(e.path);
        let content: Buffer | null;
        if (cur && sha256(cur) !== e.wroteSha) {
          // Someone edited the file after us: take out only our part, keep theirs.
          content = Buffer.from(engine.unedit(e.path, cur.toString("utf8"), { runtimePath: this.runtimePath }));
          this.o.log.warn({ path: e.path }, "file changed since we wrote it; removing only our part instead of restoring the original");
        } else {
          content = b?.existed ? b.content : null;
        }
        changes.push({ path: e.path, content, foreign: false, restart: true });
      }
      const real = changes.filter(NodeAgent.differs);
      const restart = real.some((c) => c.restart);
      this.o.log.info({ files: real.map((c) => c.path), restart }, "reverting");
      const j = this.state.begin("revert", st.appliedHash, real.map((c) => c.path));
      try {
        this.writeAll(j, real);
        this.fault("after-write");
        if (restart) {
          this.state.step(j, "restarting");
          await this.restartAndWait();
          this.state.step(j, "restarted");
        }
      } catch (e) {
        this.state.rollbackFiles(j);
        if (restart) await this.restartAndWait().catch(() => undefined);
        this.state.end();
        return outcome(false, "Failed", "ApplyFailed", `revert failed and was undone: ${(e as Error).message}`, [], restart, [], started);
      }
      this.state.step(j, "verifying");
      // The runtime's default handler ("") must still run plain pods.
      const [plain] = await this.verifyAll([{ name: "" }], undefined);
      for (const e of st.edited) this.state.dropBackup(e.path);
      this.state.saveState(null);
      this.state.end();
      if (!plain?.ok) return outcome(false, "Failed", "VerificationFailed", `reverted, but a plain pod with the runtime's default handler did not start: ${plain?.message}`, [], restart, real.map((c) => c.path), started);
      return outcome(true, "Reverted", "Reverted", "every file restored or removed; a plain pod runs", [], restart, real.map((c) => c.path), started);
    } finally {
      this.lock.release();
    }
  }
}

/** A handler's sandbox must really be isolated: gVisor shows its own kernel log, Kata a guest kernel. */
function checkIsolation(r: VerifyResult, h: { name: string; backend?: DesiredHandler["backend"] }, hostKernel: string | undefined): VerifyResult {
  if (!r.ok || !h.backend) return r;
  if (h.backend === "gvisor" && !/gVisor/i.test(r.dmesg ?? "")) {
    return { ...r, ok: false, message: `handler ${h.name} ran, but the container's kernel log does not show gVisor (kernel ${r.kernel}, dmesg "${r.dmesg}"): the handler is not sandboxed` };
  }
  if (h.backend !== "gvisor" && hostKernel && r.kernel === hostKernel) {
    return { ...r, ok: false, message: `handler ${h.name} ran on the host kernel ${r.kernel}: not a Kata guest` };
  }
  return r;
}

function verifiedStatus(handlers: readonly DesiredHandler[], results: VerifyResult[]): HandlerStatus[] {
  return handlers.map((h) => {
    const r = results.find((x) => x.handler === h.name);
    return { name: h.name, backend: h.backend, verified: !!r?.ok, kernel: r?.kernel ? `${r.kernel}${r.dmesg ? ` (${r.dmesg})` : ""}` : undefined, message: r?.ok ? undefined : (r?.message ?? "not verified (an earlier step failed)") };
  });
}

function handlerStatus(handlers: readonly DesiredHandler[], known: OwnedState["handlers"]): HandlerStatus[] {
  return handlers.map((h) => ({ name: h.name, backend: h.backend, verified: true, kernel: known.find((k) => k.name === h.name)?.kernel }));
}

function nextState(st: OwnedState | null, desired: Desired, changes: FileChange[], results: VerifyResult[], originalExisted: (p: string) => boolean): OwnedState {
  const owned = new Set(st?.owned ?? []);
  const edited = new Map((st?.edited ?? []).map((e) => [e.path, e]));
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
  };
}

function outcome(ok: boolean, phase: Outcome["phase"], reason: Outcome["reason"], message: string, handlers: HandlerStatus[], restarted: boolean, changed: string[], started: number): Outcome {
  return { ok, phase, reason, message, handlers, restarted, changed, durationMs: Date.now() - started };
}
