// Publishes the RuntimeClasses a SandboxConfig asks for (server-side apply), never touches one
// another owner holds, prunes ours that are no longer wanted and removes them last on uninstall.
import type { SandboxConfig } from "../api/index.js";
import type { KubeClient, KubeObject } from "../kube/client.js";
import type { Informer } from "../kube/informer.js";
import { logger } from "../telemetry/logger.js";
import { canonical } from "./desired-node.js";
import { CONFIG_LABEL, desiredRuntimeClasses, isOurs, type RuntimeClassObject } from "./desired-runtimeclasses.js";
import type { NodeInstaller } from "./installer.js";
import { isRefusal, REFUSAL_RETRY_MS, type Refusals } from "./refusals.js";

type RuntimeClass = KubeObject & Partial<Pick<RuntimeClassObject, "handler" | "overhead" | "scheduling">>;

const differs = (have: RuntimeClass, want: RuntimeClassObject) =>
  have.handler !== want.handler ||
  canonical(have.overhead ?? {}) !== canonical(want.overhead) ||
  canonical(have.scheduling ?? {}) !== canonical(want.scheduling ?? {}) ||
  Object.entries(want.metadata.labels).some(([k, v]) => have.metadata.labels?.[k] !== v);

export class RuntimeClassReconciler {
  private readonly log = logger("runtimeclasses");

  constructor(
    private readonly client: KubeClient,
    private readonly cache: Informer<RuntimeClass>,
    private readonly installer: NodeInstaller,
    private readonly refusals: Refusals,
  ) {}

  /** One pass; asks to be called again later while the apiserver refuses one of our classes. */
  async reconcile(config: SandboxConfig | null): Promise<{ requeueAfter?: number }> {
    const ours = this.cache.list().filter((rc) => isOurs(rc) && rc.metadata.labels?.[CONFIG_LABEL] === "cluster");
    if (!config || config.metadata.deletionTimestamp) {
      this.refusals.prune("RuntimeClass", () => false);
      // Last step of an uninstall: only once no node has anything of ours left.
      if (ours.length === 0 || !(await this.installer.nodesClean())) return {};
      for (const rc of ours) {
        await this.client.delete("RuntimeClass", rc.metadata.name);
        this.cache.forget(rc.metadata.name);
        this.log.info({ runtimeClass: rc.metadata.name }, "RuntimeClass deleted (uninstall)");
      }
      return {};
    }
    // Publish only what the installer decided for this very config (it enqueues us after each pass);
    // bad input (plan.hold) changes nothing.
    const plan = this.installer.last;
    if (!plan || plan.generation !== config.metadata.generation || plan.configUid !== config.metadata.uid || plan.hold) return {};
    const desired = this.installer.runtimeClasses?.(config) ?? desiredRuntimeClasses(config.spec);
    const wanted = new Set(desired.map((rc) => rc.metadata.name));
    this.refusals.prune("RuntimeClass", (name) => wanted.has(name));
    for (const want of desired) {
      const have = this.cache.get(want.metadata.name);
      if (have && !isOurs(have)) {
        this.log.warn({ runtimeClass: want.metadata.name }, "RuntimeClass exists and is not ours; leaving it alone (RuntimeClassConflict)");
        continue;
      }
      if (have && !differs(have, want)) {
        this.refusals.clear("RuntimeClass", want.metadata.name);
        continue;
      }
      try {
        if (have && have.handler !== want.handler) await this.client.delete("RuntimeClass", want.metadata.name); // handler is immutable
        const applied = await this.client.apply<RuntimeClass>(want as unknown as KubeObject);
        this.cache.upsert(applied);
        this.refusals.clear("RuntimeClass", want.metadata.name);
        this.log.info({ runtimeClass: want.metadata.name, overhead: want.overhead.podFixed }, have ? "RuntimeClass updated" : "RuntimeClass created");
      } catch (e) {
        if (!isRefusal(e)) throw e;
        // Reported in status (RuntimeClassRefused); the other classes are still published.
        this.refusals.record("RuntimeClass", want.metadata.name, e);
        this.log.warn({ runtimeClass: want.metadata.name, err: e.message }, "RuntimeClass refused by the apiserver (RuntimeClassRefused)");
      }
    }
    for (const rc of ours) {
      if (wanted.has(rc.metadata.name)) continue;
      await this.client.delete("RuntimeClass", rc.metadata.name);
      this.cache.forget(rc.metadata.name);
      this.log.info({ runtimeClass: rc.metadata.name }, "RuntimeClass no longer wanted; deleted");
    }
    return this.refusals.list("RuntimeClass").length ? { requeueAfter: REFUSAL_RETRY_MS } : {};
  }
}
