// The payload steps of an apply and a revert (docs/payloads.md): which payloads desired installs,
// install them before any file is written, switch and collect retired versions after; the
// PayloadInstallFailed / PayloadInUse outcomes.
import type { Logger } from "pino";
import { CriClient } from "./cri/client.js";
import { outcome, type Desired, type Outcome } from "./outcome.js";
import { gvisorPayloadFor, handlersOf, kataPayloadFor, payloadHostDir, PayloadError, payloadVersion, withPayloadLayout, type PayloadBackend, type PayloadSpec, type PayloadStore } from "./payloads.js";
import { payloadShimUnsupported, type HostInventory } from "./probe/probe.js";

const BACKEND_NAME: Record<PayloadBackend, string> = { gvisor: "gVisor", kata: "Kata" };

/** The payloads desired installs on this runtime: gVisor's (containerd 1.6 keeps host gVisor: the payload's shim needs 1.7+), and Kata's. */
export function desiredPayloads(desired: Desired, cri: HostInventory["probe"]["cri"], gvisorDefault: string | undefined): PayloadSpec[] {
  const gvisor = payloadShimUnsupported(cri) ? undefined : gvisorPayloadFor(desired, gvisorDefault);
  return [gvisor, kataPayloadFor(desired)].filter((p): p is PayloadSpec => !!p);
}

/** The inventory pointing at each payload's version dir, as apply renders it (for the drift check: nothing is installed). */
export function withPayloads(inv: HostInventory, payloads: readonly PayloadSpec[]): HostInventory {
  return payloads.reduce((acc, p) => withPayloadLayout(acc, p.backend, payloadHostDir(p.backend, payloadVersion(p.image))), inv);
}

export class PayloadSteps {
  constructor(
    readonly store: PayloadStore,
    private readonly socket: () => string,
    private readonly log: Logger,
  ) {}

  private async withCri<T>(f: (cri: CriClient) => Promise<T>): Promise<T> {
    const cri = new CriClient(this.socket());
    try {
      return await f(cri);
    } finally {
      cri.close();
    }
  }

  /** Installs every payload version: the inventory pointing at them, or a retried Failed outcome. */
  async install(fresh: HostInventory, payloads: readonly PayloadSpec[], started: number): Promise<HostInventory | Outcome> {
    let inv = fresh;
    for (const payload of payloads) {
      try {
        inv = withPayloadLayout(inv, payload.backend, await this.withCri((cri) => this.store.ensure(cri, payload)));
      } catch (e) {
        const message = e instanceof PayloadError ? e.message : `installing the ${BACKEND_NAME[payload.backend]} payload ${payload.image} failed: ${(e as Error).message}`;
        return { ...outcome(false, "Failed", "PayloadInstallFailed", message, [], false, [], started), retry: true };
      }
    }
    return inv;
  }

  /** Installs one payload with no config pointing at it yet (a Kata payload before any handler): it becomes the backend's version in use. Returns what happened. */
  async installOnly(inv: HostInventory, payload: PayloadSpec): Promise<string> {
    const out = await this.install(inv, [payload], Date.now());
    if ("ok" in out) return out.message;
    this.store.switched(payload.backend, payloadVersion(payload.image), []);
    await this.collect();
    return `the ${BACKEND_NAME[payload.backend]} payload ${payload.image} is installed; status.probe says whether it can run here`;
  }

  /** After a verified apply: the config points at these versions now; every other version of each backend is retired. */
  switched(desired: Desired, payloads: readonly PayloadSpec[]): void {
    for (const backend of ["gvisor", "kata"] as const) {
      const p = payloads.find((x) => x.backend === backend);
      this.store.switched(backend, p ? payloadVersion(p.image) : undefined, handlersOf(desired, backend));
    }
  }

  /** Where desired puts Kata: its Kata payload's version dir once installed (until then the install sets the layout), else null for the host's Kata. */
  kataTarget(desired: Desired): { dir: string; image: string } | null {
    const p = kataPayloadFor(desired);
    const dir = p && payloadHostDir("kata", payloadVersion(p.image));
    return p && dir && this.store.has(dir) ? { dir, image: p.image } : null;
  }

  /** The host dir of the Kata version in use (the probe looks for Kata there instead of /opt/kata), with its image. */
  currentKata(): { dir: string; image: string } | undefined {
    const v = this.store.current("kata");
    return v ? { dir: payloadHostDir("kata", v.version), image: v.image } : undefined;
  }

  /** Removes payload versions no sandbox can use; a runtime that does not answer only delays it. Call with the host lock held. */
  async collect(): Promise<{ removed: string[]; inUse: string[] }> {
    if (!this.store.state().versions.length) return { removed: [], inUse: [] };
    return this.withCri((cri) => this.store.collect(cri)).catch((e: Error) => {
      this.log.warn({ err: e.message }, "could not check which sandboxes use old payload versions; keeping them for now");
      return { removed: [], inUse: [`(unknown: ${e.message})`] };
    });
  }

  /** After a revert's restart: a Failed outcome (retried) while a version we installed is still in use, else undefined. */
  async afterRevert(started: number): Promise<Outcome | undefined> {
    this.store.retireAll();
    const { inUse } = await this.collect();
    if (!inUse.length) return undefined;
    return { ...outcome(false, "Failed", "PayloadInUse", `configuration reverted; payload files kept while sandboxes still run on them: ${inUse.join("; ")}`, [], false, [], started), retry: true };
  }
}
