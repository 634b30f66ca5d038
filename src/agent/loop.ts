// The agent's control loop: watches its own SandboxNode (list + watch by name, relist and backoff
// on any error), acts on spec level-based (Apply/Revert when proceed), and writes status + heartbeat.
import type { Logger } from "pino";
import type { SandboxNode, SandboxNodeStatus } from "../api/sandboxnode.js";
import { isGone, isNotFound, type KubeClient, type KubeObject } from "../kube/client.js";
import { failureReason, type NodeAgent, type Outcome } from "./apply.js";
import { buildStatus, statusChanged, type Reason, type StatusInput } from "./desired-status.js";
import type { HealthInput } from "./policy-health.js";
import { findDrift, refreshBackups } from "./drift.js";
import { decideDrift, driftPolicy, type DriftState } from "./policy-drift.js";
import { specDesiredFor, type DesiredNode } from "../render/desired-node.js";

export interface AgentLoopOptions {
  kube: KubeClient;
  nodeName: string;
  agent: NodeAgent;
  log: Logger;
  agentVersion: string;
  heartbeatMs?: number;
  /** Longest pause between relists even when the watch is healthy. */
  relistMs?: number;
  /** First wait before retrying a failure that may pass (a runtime restart); doubles per attempt up to retryMaxMs. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How often a verified node re-checks that its runtime config still holds our handlers (0 or unset: never). */
  driftMs?: number;
}

const KIND = "SandboxNode";
type Obj = Omit<SandboxNode, "metadata"> & KubeObject;
/** What every report of a pass shares (generation, probe, applied hash). */
type Base = Omit<StatusInput, "now" | "agentVersion" | "phase" | "reason" | "message">;

export class AgentLoop {
  /** What /healthz decides on (policy-health.ts): the watch's state and the pass running now. */
  private watchOpen = false;
  /** An open watch, however quiet, was contact with the apiserver up to the moment it ended. */
  private watchClosed(): void {
    if (this.watchOpen) this.lastContactAt = Date.now();
    this.watchOpen = false;
  }
  private lastContactAt = Date.now();
  private lastWatchError?: string;
  private passStartedAt?: number;
  private stopped = false;
  private readonly abort = new AbortController();
  private latest?: Obj;
  private written?: SandboxNodeStatus;
  private lastWrite = 0;
  /** A failed hash is not retried until desired changes or the agent restarts (agent contract). */
  private failedHash?: string;
  private failedStatus?: Omit<StatusInput, "now" | "agentVersion">;
  private running: Promise<void> = Promise.resolve();
  private dirty = false;
  private heartbeat?: NodeJS.Timeout;
  /** Retry of a retryable failure (outcome.retry): attempts so far and the pending timer. */
  private retries = 0;
  private retryHash?: string;
  private retryTimer?: NodeJS.Timeout;
  /** Rolling back a crashed transaction failed at start (its restart, typically); retried before anything else. */
  private recoveryError?: Error;
  /** Drift check (drift.ts): due on the timer; the streak of overwrites; what to report instead of Verified while unresolved. */
  private driftDue = false;
  private driftTimer?: NodeJS.Timeout;
  private driftState: DriftState = { streak: 0 };
  private driftStatus?: Omit<StatusInput, "now" | "agentVersion">;

  constructor(private readonly o: AgentLoopOptions) {}

  healthInput(now = Date.now()): HealthInput {
    return { now, watchOpen: this.watchOpen, lastContactAt: this.lastContactAt, lastWatchError: this.lastWatchError, passStartedAt: this.passStartedAt };
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    clearTimeout(this.driftTimer);
  }

  /** Runs until stop(): probe, finish any crashed transaction, then list/watch/reconcile. */
  async run(): Promise<void> {
    const { agent, log } = this.o;
    const probe = await agent.probe();
    log.info({ cri: probe.cri, kvm: probe.kvm, backends: probe.backends.map((b) => `${b.backend}:${b.usable ? "usable" : "no"}`) }, "probed host");
    // A failure here must not end the process: a crash-looping agent reports nothing.
    const recovered = await agent.startup().catch((e: Error) => {
      this.recoveryError = e;
      log.error({ err: e.message }, "rolling back an interrupted transaction failed; reporting it and retrying");
      return null;
    });
    if (recovered) log.warn({ recovered }, "finished an interrupted transaction");
    // Each heartbeat re-probes (cheap: KVM is not re-tested), so binaries installed later show up.
    this.heartbeat = setInterval(() => this.kick(true), this.o.heartbeatMs ?? 60_000);
    this.heartbeat.unref();
    if (this.o.driftMs) this.armDrift(this.o.driftMs);
    let backoff = 1_000;
    while (!this.stopped) {
      try {
        const list = await this.o.kube.list<Obj>(KIND, { fieldSelector: `metadata.name=${this.o.nodeName}` });
        this.lastContactAt = Date.now();
        this.latest = list.items[0];
        if (!this.latest) log.info("no SandboxNode for this node yet; waiting for the controller to create it");
        this.kick();
        await this.o.kube.watch<Obj>(
          KIND,
          {
            fieldSelector: `metadata.name=${this.o.nodeName}`,
            resourceVersion: list.metadata.resourceVersion,
            timeoutSeconds: Math.round((this.o.relistMs ?? 300_000) / 1000),
            signal: this.abort.signal,
            onOpen: () => {
              this.watchOpen = true;
              this.lastContactAt = Date.now();
              this.lastWatchError = undefined;
            },
          },
          (ev) => {
            this.lastContactAt = Date.now();
            if (ev.type === "BOOKMARK") return;
            this.latest = ev.type === "DELETED" ? undefined : ev.object;
            this.kick();
          },
        );
        this.watchClosed();
        backoff = 1_000;
      } catch (e) {
        this.watchClosed();
        this.lastWatchError = (e as Error).message;
        if (this.stopped) break;
        log.warn({ err: (e as Error).message, backoffMs: backoff, gone: isGone(e) }, "watch failed; relisting after backoff");
        await sleep(backoff, this.abort.signal);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
    await this.running;
  }

  /** Schedules a reconcile; passes never overlap and a burst of events collapses into one more pass. */
  private kick(reprobe = false): void {
    if (this.dirty) return;
    this.dirty = true;
    this.running = this.running.then(async () => {
      this.dirty = false;
      if (this.stopped) return;
      this.passStartedAt = Date.now();
      try {
        if (reprobe) await this.o.agent.probe();
        await this.reconcile();
      } catch (e) {
        this.o.log.error({ err: (e as Error).message }, "reconcile failed; retrying on the next event or heartbeat");
      } finally {
        this.passStartedAt = undefined;
      }
    });
  }

  private async reconcile(): Promise<void> {
    const obj = this.latest;
    if (!obj) return;
    const { agent } = this.o;
    const spec = obj.spec;
    const gen = obj.metadata.generation;
    const st = agent.state.state();
    const applied = st?.appliedHash ?? "";
    const probe = agent.inventory?.probe;
    const base = { generation: gen, probe, appliedHash: applied };
    if (this.recoveryError) {
      try {
        const recovered = await agent.startup();
        this.o.log.warn({ recovered }, "finished an interrupted transaction");
        this.recoveryError = undefined;
      } catch (e) {
        this.recoveryError = e as Error;
        const wait = this.scheduleRetry(undefined);
        return this.report(obj, { ...base, phase: "Failed", reason: failureReason(e), message: `rolling back an interrupted transaction failed: ${(e as Error).message}; retrying in ${wait / 1000} s` });
      }
    }
    if (probe?.cri.kind === "unknown" && !st) {
      return this.report(obj, { ...base, phase: "Failed", reason: "RuntimeNotFound", message: "no containerd or CRI-O found on the node (no CRI socket answered, no binary under the host root); check --host-root and --cri-socket" });
    }
    if (spec.action === "Revert") {
      if (!spec.proceed) return this.report(obj, { ...base, phase: "Waiting", reason: "WaitingForRollout", message: "revert requested; waiting for the rollout gate (spec.proceed)" });
      if (!st && !agent.payloads.store.installed().length) return this.report(obj, { ...base, phase: "Reverted", reason: "Reverted", message: "the node runs none of our configuration", appliedHash: "", handlers: [] });
      await this.report(obj, { ...base, phase: "Reverting", reason: "Reverting", message: "restoring the runtime configuration" });
      return this.reportOutcome(obj, await agent.revert(), undefined);
    }
    // spec.desired, or on a first install what the controller left to us: desired from spec.fromConfig and our probe.
    const pinned = spec.desired;
    const desired = specDesiredFor(spec, probe);
    if (desired && applied === desired.hash) {
      // Old payload versions go as soon as the last sandbox on them has ended.
      await agent.collectPayloads().catch((e: Error) => this.o.log.warn({ err: e.message }, "collecting old payload versions failed"));
      if (await this.driftHandled(obj, desired, base)) return;
      return this.report(obj, { ...base, phase: "Applied", reason: "Verified", message: `${desired.handlers.length} handler(s) verified`, handlers: (st?.handlers ?? []).map((h) => ({ name: h.name, backend: h.backend as "gvisor", verified: true, kernel: h.kernel })) });
    }
    if (desired && this.failedHash === desired.hash && this.failedStatus) return this.report(obj, this.failedStatus);
    const hold = holdReason(desired, spec.proceed, !!pinned, applied);
    if (hold || !desired) return this.reportHold(obj, desired, hold, base, spec.proceed && !st);
    await this.report(obj, { ...base, phase: "Applying", reason: "Applying", message: `applying ${desired.hash}` });
    const outcome = await agent.apply(desired, async (phase) => {
      await this.report(obj, { ...base, phase, reason: phase === "Verifying" ? "Verifying" : "Applying", message: phase === "Verifying" ? `verifying ${desired.handlers.length} handler(s)` : "verification failed; restoring the previous files" }).catch((e: Error) =>
        this.o.log.warn({ err: e.message }, "status write failed"),
      );
    });
    return this.reportOutcome(obj, outcome, desired.hash);
  }

  /** Reports why the agent waits. A Kata-only config on a node with nothing applied gets its Kata payload first: then the probe says whether Kata runs here. */
  private async reportHold(obj: Obj, desired: DesiredNode | undefined, hold: { reason: Reason; message: string } | undefined, base: Base, mayInstall: boolean): Promise<void> {
    if (hold?.reason === "NoUsableBackend" && desired?.payloads?.kata && mayInstall) {
      const note = await this.o.agent.installKataPayload(desired);
      return this.report(obj, { ...base, probe: this.o.agent.inventory?.probe, phase: "Waiting", reason: hold.reason, message: note ? `${hold.message}; ${note}` : hold.message });
    }
    return this.report(obj, { ...base, phase: "Waiting", ...(hold ?? { reason: "WaitingForRollout", message: "" }) });
  }

  /** A due drift check, or an unresolved drift reported instead of Verified. True when it reported. */
  private async driftHandled(obj: Obj, desired: DesiredNode, base: Base): Promise<boolean> {
    if (this.driftDue && (await this.driftPass(obj, desired, base))) return true;
    if (!this.driftStatus) return false;
    await this.report(obj, this.driftStatus);
    return true;
  }

  /** (Re)starts the drift timer: the next check is this long after the last one ended (a re-apply included). */
  private armDrift(ms: number): void {
    clearTimeout(this.driftTimer);
    this.driftTimer = setTimeout(() => {
      this.driftDue = true;
      this.kick();
    }, ms);
    this.driftTimer.unref();
  }

  /** Checks for drift; on drift reports Degraded (handlers unverified, so the controller unlabels) and re-applies, or holds off. True when it reported. */
  private async driftPass(obj: Obj, desired: DesiredNode, base: Base): Promise<boolean> {
    const { agent, log } = this.o;
    const interval = this.o.driftMs!;
    this.driftDue = false;
    try {
      const finding = await findDrift(agent, desired, log);
      const d = decideDrift(this.driftState, !!finding, Date.now(), driftPolicy(interval));
      this.driftState = d.next;
      if (d.action === "clean" || !finding) {
        this.driftStatus = undefined;
        return false;
      }
      const handlers = desired.handlers.map((h) => ({ name: h.name, backend: h.backend, verified: false, message: `drift: ${finding.message}` }));
      if (d.action === "hold") {
        log.warn({ streak: d.next.streak, waitMs: d.waitMs, drift: finding.message }, "our configuration keeps being overwritten; holding off before re-applying");
        this.driftStatus = { ...base, phase: "Failed", reason: "DriftRepeated", handlers, message: `${finding.message}; our configuration was overwritten ${d.next.streak} times in a row (an admin, a config manager or the runtime's own generator keeps rewriting it): re-applying in ${Math.round(d.waitMs / 1000)} s, not in a restart loop` };
        await this.report(obj, this.driftStatus);
        this.armDrift(d.waitMs);
        return true;
      }
      if (!finding.files.length) return await this.restartForHandlers(obj, desired, base, finding.message);
      log.warn({ streak: d.next.streak, drift: finding.message }, "runtime configuration drifted; re-applying");
      this.driftStatus = undefined;
      await this.report(obj, { ...base, phase: "Applying", reason: "ConfigDrift", handlers, message: `${finding.message}; re-applying ${desired.hash}` });
      const refreshed = await refreshBackups(agent, desired);
      if (refreshed.length) log.info({ files: refreshed }, "regenerated files become the originals a revert restores");
      const out = await agent.apply(desired, async (phase) => {
        const doing = phase === "Verifying" ? `re-applied; re-verifying ${desired.handlers.length} handler(s)` : "re-verification failed; restoring the previous files";
        await this.report(obj, { ...base, phase, reason: "ConfigDrift", message: `${finding.message}; ${doing}` }).catch((e: Error) => log.warn({ err: e.message }, "status write failed"));
      });
      await this.reportOutcome(obj, out, desired.hash);
      // A failed re-apply stays reported until a drift check is clean or a later re-apply works.
      if (!out.ok) {
        this.driftStatus = { ...base, phase: "Failed", reason: out.reason === "Verified" || out.reason === "Reverted" ? "ApplyFailed" : out.reason, handlers: out.handlers, message: `re-applying after drift (${finding.message}) failed: ${out.message}`, failedHash: desired.hash };
        await this.report(obj, this.driftStatus);
      }
      return true;
    } finally {
      if (!this.driftState.holdUntil) this.armDrift(interval);
    }
  }

  /** Our files are intact but the runtime does not list our handlers (started on another config, not restarted since): restart it on ours. */
  private async restartForHandlers(obj: Obj, desired: DesiredNode, base: Base, drift: string): Promise<boolean> {
    const { agent, log } = this.o;
    const handlers = desired.handlers.map((h) => ({ name: h.name, backend: h.backend, verified: false, message: `drift: ${drift}` }));
    log.warn({ drift }, "the runtime does not run our handlers although our files are in place; restarting it");
    await this.report(obj, { ...base, phase: "Applying", reason: "ConfigDrift", handlers, message: `${drift}; our files are in place: restarting the runtime on them` });
    const failed = await agent.restartRuntime().then(
      async () => {
        const again = await findDrift(agent, desired, log);
        return again ? `${again.message} after restarting the runtime on our files` : undefined;
      },
      (e: Error) => `${drift}; restarting the runtime failed: ${e.message}`,
    );
    this.driftStatus = failed ? { ...base, phase: "Failed", reason: "ConfigDrift", handlers, message: failed } : undefined;
    if (this.driftStatus) await this.report(obj, this.driftStatus);
    return !!this.driftStatus;
  }

  private async reportOutcome(obj: Obj, out: Outcome, hash: string | undefined): Promise<void> {
    const st = this.o.agent.state.state();
    const input: Omit<StatusInput, "now" | "agentVersion"> = {
      generation: obj.metadata.generation,
      probe: this.o.agent.inventory?.probe,
      phase: out.phase,
      reason: out.reason,
      message: out.message,
      appliedHash: st?.appliedHash ?? "",
      handlers: out.handlers,
      failedHash: out.ok ? undefined : hash,
    };
    if (out.ok) this.retries = 0;
    // Any apply or revert outcome supersedes a drift status (a failed re-apply sets its own after this).
    this.driftStatus = undefined;
    if (!out.ok && hash) {
      this.failedHash = hash;
      this.failedStatus = input;
    }
    clearTimeout(this.retryTimer);
    if (!out.ok && out.retry) input.message += `; retrying in ${this.scheduleRetry(hash) / 1000} s`;
    this.o.log.info({ phase: out.phase, reason: out.reason, restarted: out.restarted, ms: out.durationMs, message: out.message }, "outcome");
    await this.report(obj, input);
  }

  /** Kicks a pass after a backoff; a failed hash it retries is forgotten then (unless it changed meanwhile). Returns the wait. */
  private scheduleRetry(hash: string | undefined): number {
    if (hash !== this.retryHash) {
      this.retries = 0;
      this.retryHash = hash;
    }
    const ms = Math.min((this.o.retryBaseMs ?? 30_000) * 2 ** this.retries, this.o.retryMaxMs ?? 600_000);
    this.retries++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (hash !== undefined && this.failedHash === hash) {
        this.failedHash = undefined;
        this.failedStatus = undefined;
      }
      this.kick();
    }, ms);
    this.retryTimer.unref();
    return ms;
  }

  private async report(obj: Obj, input: Omit<StatusInput, "now" | "agentVersion">): Promise<void> {
    const next = buildStatus(this.written ?? obj.status, { ...input, agentVersion: this.o.agentVersion, now: new Date().toISOString() });
    const due = Date.now() - this.lastWrite >= (this.o.heartbeatMs ?? 60_000) - 1_000;
    if (!statusChanged(this.written ?? obj.status, next) && !due) return;
    const patch = { status: { ...next, failedHash: next.failedHash ?? null } };
    try {
      await this.o.kube.mergePatch(KIND, obj.metadata.name, patch, { subresource: "status" });
      this.written = next;
      this.lastWrite = Date.now();
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
  }
}

/** Why the agent does not apply desired now (it reports Waiting with this), or undefined when it may. */
function holdReason(desired: DesiredNode | undefined, proceed: boolean, pinned: boolean, applied: string): { reason: Reason; message: string } | undefined {
  if (!desired) return { reason: "WaitingForRollout", message: "waiting for the controller to compute spec.desired" };
  if (!proceed) return { reason: "WaitingForRollout", message: "waiting for the rollout gate (spec.proceed)" };
  // fromConfig only installs onto a node with nothing applied; a change of what runs here comes as spec.desired.
  if (!pinned && applied) return { reason: "WaitingForRollout", message: `waiting for the controller to roll out ${desired.hash} (spec.desired)` };
  if (!desired.handlers.length) return { reason: "NoUsableBackend", message: "none of the allowed runtimes is usable on this node (see status.probe)" };
  return undefined;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });
}
