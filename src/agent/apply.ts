// The apply/revert protocol on one node: render -> compare bytes -> journal -> atomic writes ->
// restart only if a runtime config changed -> wait for CRI -> verify every handler through CRI ->
// commit, or restore the previous bytes, restart and report. A crash anywhere rolls back next start.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { DesiredHandler, Probe } from "../api/sandboxnode.js";
import { CriClient, waitCriReady } from "./cri/client.js";
import type { Engine } from "./engines/engine.js";
import { ContainerdEngine } from "./engines/containerd/engine.js";
import { CrioEngine } from "./engines/crio/engine.js";
import { atomicWrite, readOrNull, removeEmptyDirsUp, removeFile, sha256 } from "./fsutil.js";
import { renderRunscConfig } from "../render/node/runsc-config.js";
import { renderKataConfigs } from "../render/node/kata-config.js";
import { INSTALL_DIR, runscConfigPath, type Layout } from "../render/node/layout.js";
import { guestUntried, probeHostDetailed, type HostInventory } from "./probe/probe.js";
import { RuntimeRestartError } from "./restart.js";
import { checkIsolation, failureReason, handlerStatus, nextState, outcome, unexpected, verifiedStatus, type Desired, type Outcome } from "./outcome.js";
import { HostLock, removeEmptyDirs, StateDir, type FileChange, type JournalEntry, type OwnedState } from "./txn.js";
import { cleanupVerifySandboxes, ensureVerifyImage, verifyHandler, VerifyImageError, type VerifyImage, type VerifyResult } from "./verify.js";
import { kataPayloadFor, PAYLOAD_LOG_DIR, PayloadStore } from "./payloads.js";
import type { NodeAgentOptions } from "./agent-options.js";
import { desiredPayloads, PayloadSteps, withPayloads } from "./payload-steps.js";
import { sandboxesOnHandlers } from "./handlers-in-use.js";

export { failureReason, type Desired, type Outcome } from "./outcome.js";
export type { HandlerVerifier, NodeAgentOptions } from "./agent-options.js";
/** Called as the apply moves on, so the status can say so; errors in it do not stop the apply. */
export type PhaseHook = (phase: "Verifying" | "RollingBack") => Promise<void>;

const LOG_ROOT = "/var/log/sandbox-operator";
const VERIFY_LOG_DIR = `${LOG_ROOT}/verify`;
const BIN_NAMES = ["runsc", "containerd-shim-runsc-v1"];

export class NodeAgent {
  readonly state: StateDir;
  private readonly lock: HostLock;
  readonly payloads: PayloadSteps;
  inventory?: HostInventory;
  private probedKataDir?: string;

  constructor(readonly o: NodeAgentOptions) {
    this.state = new StateDir(o.hostRoot);
    this.lock = new HostLock(this.state);
    const store = new PayloadStore({ hostRoot: o.hostRoot, runtimePath: (p) => this.runtimePath(p), stateDir: this.state.dir, log: o.log });
    this.payloads = new PayloadSteps(store, () => this.socket(), o.log);
  }

  private fault(step: string): void {
    if (this.o.fault === step) {
      this.o.log.warn({ step }, "fault injection: killing the agent");
      process.kill(process.pid, "SIGKILL");
    }
  }

  private local = (hostPath: string) => join(this.o.hostRoot, hostPath);
  /** Our files outside the install dir are CRI drop-ins, which the runtime reads only at start. */
  private restartsOnChange = (path: string) => !path.startsWith(this.local(INSTALL_DIR) + "/");
  private runtimePath = (hostPath: string) => (this.o.configPrefix ? join(this.o.configPrefix, hostPath) : hostPath);

  /**
   * Probes the host, looking for Kata in `kata` (default: the Kata payload version in use; null: the
   * host's --kata-dir). KVM's test guest boots once per Kata dir, and again once one has a QEMU to try.
   */
  async probe(kata: { dir: string; image: string } | null | undefined = this.payloads.currentKata()): Promise<Probe> {
    const kataDir = kata?.dir ?? this.o.kataDir;
    const prev = this.inventory?.probe.kvm;
    const kvm = this.probedKataDir === kataDir && prev && !guestUntried(prev) ? prev : undefined;
    this.probedKataDir = kataDir;
    this.inventory = await probeHostDetailed({
      hostRoot: this.o.hostRoot,
      criSocket: this.o.criSocket,
      containerdConfig: this.o.containerdConfig,
      configPrefix: this.o.configPrefix,
      payloadDir: this.o.payloadDir,
      gvisorPayload: this.o.gvisorPayload,
      kataDir,
      kataPayload: kata?.image,
      kvm,
    });
    return this.inventory.probe;
  }

  /** A probe after a change already made: a failure keeps the earlier inventory and does not undo the change. */
  private reprobe(): Promise<unknown> {
    return this.probe().catch((e: Error) => this.o.log.warn({ err: e.message }, "re-probe after the change failed; status.probe stays as it was"));
  }

  private socket(): string {
    const s = this.o.criSocket ?? this.inventory?.socket;
    if (!s) throw new Error("no CRI socket answered under the host root; pass --cri-socket");
    return s;
  }

  private engine(inv: HostInventory): Engine {
    if (inv.probe.cri.kind === "crio") return new CrioEngine(this.o.hostRoot);
    const major = Number((inv.probe.cri.version ?? "1").split(".")[0]) || 1;
    return new ContainerdEngine({ hostRoot: this.o.hostRoot, configPath: inv.containerdConfig, major, containerdBinary: this.o.containerdBinary, hostPid: this.o.hostPid, configPrefix: this.o.configPrefix });
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
    for (const p of st?.owned ?? []) if (!wanted.has(p)) changes.push({ path: p, content: null, foreign: false, restart: this.restartsOnChange(p) });
    return changes;
  }

  private static differs(c: FileChange): boolean {
    const cur = readOrNull(c.path);
    if (c.content === null) return cur !== null;
    return cur === null || !cur.equals(c.content);
  }

  /** For the drift check (drift.ts): the files applying desired again would change, and the engine; nothing is written. */
  async pendingChanges(desired: Desired): Promise<{ changes: FileChange[]; engine: Engine }> {
    const fresh = this.inventory ?? (await this.probe(), this.inventory!);
    // The layout apply used: the payloads' version dirs (apply's own choice).
    const inv = withPayloads(fresh, desiredPayloads(desired, fresh.probe.cri, this.o.gvisorPayload));
    const engine = this.engine(inv);
    return { changes: this.plan(desired, inv, engine, this.state.state()).filter(NodeAgent.differs), engine };
  }

  /** For drift (drift.ts): the files are ours but the running runtime does not list our handlers; restart it on them. */
  async restartRuntime(): Promise<void> {
    this.lock.acquire();
    try {
      await this.restartAndWait();
    } finally {
      this.lock.release();
    }
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
    await this.cleanupVerification();
    return `rolled back an interrupted ${j.op} of ${j.hash} (crashed at step ${j.step})`;
  }

  /** Removes verification Pods (or CRI sandboxes) of this node that a killed agent left, in or out of a transaction. */
  private async cleanupVerification(): Promise<number> {
    try {
      if (this.o.verifier) return await this.o.verifier.cleanup();
      const cri = new CriClient(this.socket());
      return await cleanupVerifySandboxes(cri).finally(() => cri.close());
    } catch (e) {
      // Runtime or apiserver down: the next start (or the next recovery) tries again.
      this.o.log.warn({ err: (e as Error).message }, "could not look for verification Pods a previous agent left");
      return 0;
    }
  }

  private get kind(): "containerd" | "crio" {
    return this.inventory?.probe.cri.kind === "crio" ? "crio" : "containerd";
  }

  /** Restarts the runtime and waits for CRI; any failure is a RuntimeRestartError (reason RuntimeRestartFailed). */
  private async restartAndWait(): Promise<void> {
    const kind = this.kind;
    await this.o.restarter.restart(kind, this.inventory?.unit).catch((e: Error) => {
      throw e instanceof RuntimeRestartError ? e : new RuntimeRestartError(`restarting ${kind} failed: ${e.message}`, { cause: e });
    });
    const socket = this.socket();
    await waitCriReady(socket, 60_000).catch((e: Error) => {
      throw new RuntimeRestartError(`${kind} did not serve CRI again after the restart (${this.o.restarter.name}): ${e.message}`, { cause: e });
    });
  }

  /** After a failed change the files are restored: restart on them, and say how that went. */
  private async restartRestored(failure: { reason: string; message: string }): Promise<void> {
    await this.restartAndWait().then(
      () => {
        if (failure.reason === "RuntimeRestartFailed") failure.message += `; the previous files were restored byte-for-byte and ${this.kind} restarted on them`;
      },
      (e: Error) => (failure.message += `; restarting ${this.kind} on the restored files failed too: ${e.message}; it may be down until restarted by hand`),
    );
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

  /** Between apply/revert runs (the loop calls it): removes payload versions no sandbox uses any more. */
  async collectPayloads(): Promise<{ removed: string[]; inUse: string[] }> {
    this.lock.acquire();
    try {
      return await this.payloads.collect();
    } finally {
      this.lock.release();
    }
  }

  /**
   * Nothing applied and no handler this node can run, but a Kata payload named: install just that, so
   * the probe can tell whether Kata runs here (the controller then gives the node Kata handlers, or not).
   * Returns what happened, for the status message. Nothing else is written; uninstall removes it.
   */
  async installKataPayload(desired: Desired): Promise<string> {
    const payload = kataPayloadFor(desired);
    if (!payload || this.state.state()) return "";
    this.lock.acquire();
    try {
      await this.recover();
      await this.probe(this.payloads.kataTarget(desired));
      const note = await this.payloads.installOnly(this.inventory!, payload);
      await this.reprobe();
      return note;
    } finally {
      this.lock.release();
    }
  }

  /** Verifies handlers (Pods or CRI); a handler without a backend (the runtime's default, "") is only run, not checked for isolation. */
  private async verifyAll(handlers: ReadonlyArray<{ name: string; backend?: DesiredHandler["backend"] }>, hostKernel: string | undefined, spec?: Desired["verification"]): Promise<VerifyResult[]> {
    const image: VerifyImage = { ...spec, image: spec?.image ?? this.o.verifyImage };
    const verifier = this.o.verifier;
    if (verifier) return this.verifyEach(handlers, hostKernel, verifier.name, (h) => verifier.verify(h, image));
    const cri = new CriClient(this.socket());
    const logDir = { local: this.local(VERIFY_LOG_DIR), runtime: this.runtimePath(VERIFY_LOG_DIR) };
    try {
      await ensureVerifyImage(cri, image, this.o.log);
      return await this.verifyEach(handlers, hostKernel, "cri", (h) => verifyHandler({ cri, handler: h, image: image.image, logDir }));
    } finally {
      cri.close();
    }
  }

  /** One handler after the other, each checked for isolation and logged. */
  private async verifyEach(handlers: ReadonlyArray<{ name: string; backend?: DesiredHandler["backend"] }>, hostKernel: string | undefined, via: string, verify: (handler: string) => Promise<VerifyResult>): Promise<VerifyResult[]> {
    const results: VerifyResult[] = [];
    for (const h of handlers) {
      const r = await verify(h.name);
      results.push(checkIsolation(r, h, hostKernel));
      this.o.log.info({ handler: h.name, backend: h.backend, via, ok: r.ok, kernel: r.kernel, dmesg: r.dmesg, ms: r.durationMs, message: r.message }, "verified handler");
    }
    return results;
  }

  /**
   * At agent start: take the lock once and finish (roll back) whatever a crashed run left, and remove
   * the verification Pods it left even outside a transaction (a drift check's, a kill between steps).
   */
  async startup(): Promise<string | null> {
    this.lock.acquire();
    try {
      const recovered = await this.recover();
      const left = recovered ? 0 : await this.cleanupVerification();
      if (left) this.o.log.warn({ removed: left }, "removed verification Pods a previous agent left");
      return recovered;
    } finally {
      this.lock.release();
    }
  }

  /** Never throws: a failure that is not the desired state's fault (lock, crash recovery, I/O) is a retryable Failed outcome. */
  async apply(desired: Desired, onPhase: PhaseHook = async () => undefined): Promise<Outcome> {
    const started = Date.now();
    try {
      this.lock.acquire();
      try {
        return await this.applyLocked(desired, onPhase, started);
      } finally {
        this.lock.release();
      }
    } catch (e) {
      return unexpected(e, "apply", started);
    }
  }

  private async applyLocked(desired: Desired, onPhase: PhaseHook, started: number): Promise<Outcome> {
    await this.recover();
    // Kata where this desired state puts it: its payload's version, else the host's.
    await this.probe(this.payloads.kataTarget(desired));
    const fresh = this.inventory!;
    if (fresh.probe.cri.kind === "unknown") return outcome(false, "Failed", "RuntimeNotFound", "no containerd or CRI-O found on the node (no CRI socket answered, no binary installed)", [], false, [], started);
    const engine = this.engine(fresh);
    const st = this.state.state();
    const payloads = desiredPayloads(desired, fresh.probe.cri, this.o.gvisorPayload);
    const inv = await this.payloads.install(fresh, payloads, started);
    if ("ok" in inv) return inv;
    let changes: FileChange[];
    try {
      changes = this.plan(desired, inv, engine, st).filter(NodeAgent.differs);
    } catch (e) {
      return outcome(false, "Failed", "ApplyFailed", `${engine.describe}: ${(e as Error).message}`, [], false, [], started);
    }
    if (changes.length === 0 && st?.appliedHash === desired.hash) {
      this.o.log.info({ hash: desired.hash }, "node already runs this configuration; nothing written, no restart");
      await this.payloads.collect();
      return outcome(true, "Applied", "Verified", "already applied", handlerStatus(desired.handlers, st.handlers), false, [], started);
    }
    const restart = changes.some((c) => c.restart);
    this.o.log.info({ hash: desired.hash, engine: engine.describe, files: changes.map((c) => c.path), restart }, "applying");
    const j = this.state.begin("apply", desired.hash, changes.map((c) => c.path));
    let results: VerifyResult[] = [];
    let failure: { reason: "ApplyFailed" | "RuntimeRestartFailed" | "VerificationFailed" | "VerificationImagePullFailed"; message: string } | undefined;
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
      failure = { reason: failureReason(e), message: (e as Error).message };
    }
    if (!failure) {
      this.state.step(j, "verifying");
      await onPhase("Verifying");
      try {
        results = await this.verifyAll(desired.handlers, fresh.probe.kernel, desired.verification);
        const bad = results.filter((r) => !r.ok);
        // Unproven is not proven broken, but unproven files go too: the reason says which it was.
        const reason = bad.length && bad.every((r) => r.imagePull) ? "VerificationImagePullFailed" : "VerificationFailed";
        if (bad.length) failure = { reason, message: bad.map((r) => `handler ${r.handler}: ${r.message}`).join("; ") };
      } catch (e) {
        failure = e instanceof VerifyImageError ? { reason: "VerificationImagePullFailed", message: e.message } : { reason: "VerificationFailed", message: `verification could not run: ${(e as Error).message}` };
      }
    }
    if (failure) {
      this.o.log.error({ hash: desired.hash, reason: failure.reason, message: failure.message }, "apply failed; restoring the previous files");
      await onPhase("RollingBack");
      this.state.rollbackFiles(j);
      if (restart) await this.restartRestored(failure);
      this.state.end();
      this.state.saveState(st ? { ...st, failedHash: desired.hash, failedMessage: failure.message } : null);
      // Nothing of ours remains: a backup kept now would go stale if the admin edits the file later.
      if (!st) for (const c of changes) if (c.foreign) this.state.dropBackup(c.path);
      await this.payloads.collect();
      const out = outcome(false, "Failed", failure.reason, failure.message, verifiedStatus(desired.handlers, results), restart, changes.map((c) => c.path), started);
      return failure.reason === "RuntimeRestartFailed" ? { ...out, retry: true } : out;
    }
    this.state.saveState(nextState(st, desired, changes, results, (p) => this.state.backup(p)?.existed ?? true, j.dirs));
    this.state.end();
    // The runtime runs the new config now: older payload versions go once no sandbox uses them.
    this.payloads.switched(desired, payloads);
    await this.payloads.collect();
    // status.probe says what is installed now (a Kata payload: installed, and whether it can run here).
    await this.reprobe();
    return outcome(true, "Applied", "Verified", `${desired.handlers.length} handler(s) verified`, verifiedStatus(desired.handlers, results), restart, changes.map((c) => c.path), started);
  }

  /** Never throws, as apply(). */
  async revert(): Promise<Outcome> {
    const started = Date.now();
    try {
      this.lock.acquire();
      try {
        return await this.revertLocked(started);
      } finally {
        this.lock.release();
      }
    } catch (e) {
      return unexpected(e, "revert", started);
    }
  }

  private async revertLocked(started: number): Promise<Outcome> {
    await this.recover();
    if (!this.inventory) await this.probe();
    const inv = this.inventory!;
    const st = this.state.state();
    if (!st) return (await this.payloads.afterRevert(started)) ?? outcome(true, "Reverted", "Reverted", "nothing of ours on this node", [], false, [], started);
    const engine = this.engine(inv);
    if (engine.kind === "crio") {
      const busy = await sandboxesOnHandlers(this.socket(), st.handlers.map((h) => h.name));
      if (busy.length) return { ...outcome(false, "Failed", "HandlerInUse", `configuration kept: CRI-O cannot stop or remove a pod once its handler is gone from its config, and these pods run on our handlers: ${busy.join(", ")}; delete them (or let them end) and the revert continues`, [], false, [], started), retry: true };
    }
    const changes: FileChange[] = [];
    for (const p of st.owned) changes.push({ path: p, content: null, foreign: false, restart: this.restartsOnChange(p) });
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
      const failure = { reason: failureReason(e), message: `revert failed and was undone: ${(e as Error).message}` };
      this.state.rollbackFiles(j);
      if (restart) await this.restartRestored(failure);
      this.state.end();
      return { ...outcome(false, "Failed", failure.reason, failure.message, [], restart, [], started), retry: failure.reason === "RuntimeRestartFailed" };
    }
    this.state.step(j, "verifying");
    // The runtime's default handler ("") must still run plain pods.
    const [plain] = await this.verifyAll([{ name: "" }], undefined);
    for (const e of st.edited) this.state.dropBackup(e.path);
    this.state.saveState(null);
    this.state.end();
    // Our emptied directories first, so that the last payload version can take /opt/sandbox-operator with it.
    removeEmptyDirs([...(st.dirs ?? []), this.local(VERIFY_LOG_DIR), this.local("/var/log/sandbox-operator")]);
    // Config first, restart, then the files: a version goes only once no sandbox runs on it.
    const inUse = await this.payloads.afterRevert(started);
    // Directories left empty: those of our files and our layout's (a rolled-back apply may have made
    // etc/kata/ and taken only its file back out), payload versions', our logs. Anyone else's
    // stay, and so does our state dir.
    const emptied = [...st.owned.map((p) => dirname(p)), ...["etc/kata", "bin", "gvisor", "kata"].map((d) => this.local(`${INSTALL_DIR}/${d}`))];
    for (const d of emptied) removeEmptyDirsUp(d, this.local(INSTALL_DIR));
    for (const d of [VERIFY_LOG_DIR, PAYLOAD_LOG_DIR]) removeEmptyDirsUp(this.local(d), this.local(LOG_ROOT));
    if (inUse) return inUse;
    if (!plain?.ok) return outcome(false, "Failed", "VerificationFailed", `reverted, but a plain pod with the runtime's default handler did not start: ${plain?.message}`, [], restart, real.map((c) => c.path), started);
    return outcome(true, "Reverted", "Reverted", "every file restored or removed; a plain pod runs", [], restart, real.map((c) => c.path), started);
  }
}
