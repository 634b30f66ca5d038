// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a candidate takes
// the lease when it is free or its holder stopped renewing for leaseDuration (measured on our
// own clock since we last saw the record change, so clock skew between replicas does not matter).
import { isConflict, isNotFound, type KubeClient, type KubeObject } from "./client.js";
import { sleep } from "./informer.js";
import { logger } from "../telemetry/logger.js";

interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease stays valid without renewal (default 15 s). */
  leaseDurationMs?: number;
  /** The leader gives up when it could not renew for this long (default 2/3 of the lease). */
  renewDeadlineMs?: number;
  /** Interval between acquire/renew attempts (default 1/5 of the lease). */
  retryPeriodMs?: number;
}

export const LEADER_DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
const microTime = (d = new Date()) => d.toISOString().replace(/Z$/, "000Z");

export class LeaderElector {
  private observedRecord = "";
  private observedAt = 0;
  private leading = false;
  private readonly log;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;

  constructor(
    private readonly client: KubeClient,
    readonly opts: LeaderElectionOptions,
  ) {
    // controller-runtime's defaults (15 s lease, 10 s renew deadline, 2 s retry); a shorter lease
    // (tests, --lease-duration-seconds) keeps the same proportions.
    this.leaseDurationMs = opts.leaseDurationMs ?? LEADER_DEFAULTS.leaseDurationMs;
    const standard = this.leaseDurationMs === LEADER_DEFAULTS.leaseDurationMs;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? (standard ? LEADER_DEFAULTS.renewDeadlineMs : Math.round((this.leaseDurationMs * 2) / 3));
    this.retryPeriodMs = opts.retryPeriodMs ?? (standard ? LEADER_DEFAULTS.retryPeriodMs : Math.max(200, Math.round(this.leaseDurationMs / 7.5)));
    this.log = logger("leader-election", { lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until leadership is won, then renews until it is lost or the signal aborts.
   * Resolves with "lost" (the caller must stop acting at once) or "stopped".
   */
  async run(signal: AbortSignal, onStartedLeading: () => void): Promise<"lost" | "stopped"> {
    while (!signal.aborted) {
      if (await this.attempt()) break;
      await sleep(this.retryPeriodMs, signal);
    }
    if (signal.aborted) return "stopped";
    this.leading = true;
    this.log.info("became leader");
    onStartedLeading();
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.retryPeriodMs, signal);
      if (signal.aborted) break;
      const ok = await this.attempt();
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.renewDeadlineMs) {
        this.leading = false;
        this.log.error({ renewDeadlineMs: this.renewDeadlineMs }, "lost leadership: could not renew the lease in time");
        return "lost";
      }
    }
    return "stopped";
  }

  /** One attempt, bounded: a hung request must not keep a leader believing it still leads. */
  private attempt(): Promise<boolean> {
    const limit = Math.max(200, Math.round(this.renewDeadlineMs / 2));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`lease request took longer than ${limit} ms`)), limit);
    });
    return Promise.race([this.tryAcquireOrRenew(), timeout])
      .catch((e) => this.warn(e))
      .finally(() => clearTimeout(timer));
  }

  private warn(e: unknown): false {
    this.log.warn({ err: (e as Error).message }, "lease acquire/renew failed");
    return false;
  }

  private spec(old?: Lease["spec"]): Lease["spec"] {
    const now = microTime();
    const same = old?.holderIdentity === this.opts.identity;
    return {
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.leaseDurationMs / 1000)),
      acquireTime: same && old?.acquireTime ? old.acquireTime : now,
      renewTime: now,
      leaseTransitions: (old?.leaseTransitions ?? 0) + (same || !old?.holderIdentity ? 0 : 1),
    };
  }

  async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.opts;
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>("Lease", name, namespace);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      try {
        await this.client.create<Lease>({ apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name, namespace }, spec: this.spec() } as Lease);
        this.observe("created");
        return true;
      } catch (err) {
        if (isConflict(err) || (err as { status?: number }).status === 409) return false;
        throw err;
      }
    }
    const s = lease.spec ?? {};
    const record = `${s.holderIdentity}|${s.renewTime}|${s.leaseDurationSeconds}`;
    if (record !== this.observedRecord) this.observe(record);
    const held = !!s.holderIdentity && s.holderIdentity !== identity;
    const expired = Date.now() > this.observedAt + (s.leaseDurationSeconds ?? 0) * 1000;
    if (held && !expired) return false;
    try {
      await this.client.replace<Lease>({ ...lease, apiVersion: "coordination.k8s.io/v1", kind: "Lease", spec: this.spec(s) });
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
    if (held) this.log.info({ previous: s.holderIdentity }, "took over an expired lease");
    return true;
  }

  private observe(record: string): void {
    this.observedRecord = record;
    this.observedAt = Date.now();
  }

  /** Gives the lease up so another replica takes over at once (on graceful shutdown). */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    const { namespace, name, identity } = this.opts;
    try {
      const lease = await this.client.get<Lease>("Lease", name, namespace);
      if (lease.spec?.holderIdentity !== identity) return;
      await this.client.replace<Lease>({ ...lease, apiVersion: "coordination.k8s.io/v1", kind: "Lease", spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: microTime() } });
      this.log.info("released the lease");
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, "could not release the lease; the next leader waits for it to expire");
    }
  }
}
