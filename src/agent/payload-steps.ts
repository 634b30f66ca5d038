// The payload steps of an apply and a revert (docs/payloads.md): install the version before any
// file is written, collect retired versions after; the PayloadInstallFailed / PayloadInUse outcomes.
import type { Logger } from "pino";
import { CriClient } from "./cri/client.js";
import { outcome, type Outcome } from "./outcome.js";
import { PayloadError, withPayloadLayout, type PayloadSpec, type PayloadStore } from "./payloads.js";
import type { HostInventory } from "./probe/probe.js";

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

  /** Installs the payload version: the inventory pointing at it, or a retried Failed outcome. */
  async install(fresh: HostInventory, payload: PayloadSpec, started: number): Promise<HostInventory | Outcome> {
    try {
      return withPayloadLayout(fresh, await this.withCri((cri) => this.store.ensure(cri, payload)));
    } catch (e) {
      const message = e instanceof PayloadError ? e.message : `installing the gVisor payload ${payload.image} failed: ${(e as Error).message}`;
      return { ...outcome(false, "Failed", "PayloadInstallFailed", message, [], false, [], started), retry: true };
    }
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
