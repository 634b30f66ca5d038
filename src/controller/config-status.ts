// The SandboxConfig's own concerns: the uninstall finalizer, status (counts, nodes, classes,
// conditions) written only when it changed, and Events for each transition.
import { API_VERSION, SANDBOXCONFIG_KIND, type SandboxConfig } from "../api/index.js";
import type { KubeClient, KubeObject } from "../kube/client.js";
import type { EventRecorder } from "../kube/events.js";
import type { Informer } from "../kube/informer.js";
import { logger } from "../telemetry/logger.js";
import { desiredRuntimeClasses, isOurs, runtimeClassConflicts, CONFIG_LABEL, PURPOSE_LABEL } from "./desired-runtimeclasses.js";
import { desiredStatus, sameStatus, transitions } from "./desired-status.js";
import type { NodeInstaller } from "./installer.js";
import type { Refusals } from "./refusals.js";

export const FINALIZER = "sandboxing.dev/uninstall";

export class ConfigReconciler {
  private readonly log = logger("config");

  constructor(
    private readonly client: KubeClient,
    private readonly configs: Informer<SandboxConfig>,
    private readonly runtimeClasses: Informer<KubeObject>,
    private readonly installer: NodeInstaller,
    private readonly events: EventRecorder,
    private readonly refusals?: Refusals,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async reconcile(config: SandboxConfig | null): Promise<void> {
    if (!config) return;
    const finalizers = config.metadata.finalizers ?? [];
    const deleting = !!config.metadata.deletionTimestamp;
    if (!deleting && !finalizers.includes(FINALIZER)) {
      // resourceVersion makes this a compare-and-swap on the finalizer list.
      const updated = await this.client.mergePatch<SandboxConfig & KubeObject>(SANDBOXCONFIG_KIND, config.metadata.name, { metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: config.metadata.resourceVersion } });
      this.configs.upsert(updated);
      this.log.info({ config: config.metadata.name }, "finalizer added");
      config = updated;
    }
    if (deleting && finalizers.includes(FINALIZER) && (await this.uninstallFinished())) {
      await this.client.mergePatch(SANDBOXCONFIG_KIND, config.metadata.name, { metadata: { finalizers: finalizers.filter((f) => f !== FINALIZER), resourceVersion: config.metadata.resourceVersion } });
      this.events.record(this.target(config), "Normal", "Uninstalled", "every node reverted, RuntimeClasses removed; finalizer released");
      this.log.info({ config: config.metadata.name }, "uninstall complete; finalizer removed");
      return;
    }
    await this.writeStatus(config);
  }

  /** Nothing of ours is left: no SandboxNode (fresh list) and no RuntimeClass of ours. */
  private async uninstallFinished(): Promise<boolean> {
    const ours = this.runtimeClasses.list().some((rc) => isOurs(rc) && rc.metadata.labels?.[CONFIG_LABEL] === "cluster");
    if (ours) return false;
    const rcs = await this.client.list<KubeObject>("RuntimeClass", { labelSelector: `${CONFIG_LABEL}=cluster` });
    return rcs.items.length === 0 && (await this.installer.nodesClean());
  }

  private target(config: SandboxConfig) {
    return { apiVersion: API_VERSION, kind: SANDBOXCONFIG_KIND, name: config.metadata.name, uid: config.metadata.uid };
  }

  private async writeStatus(config: SandboxConfig): Promise<void> {
    const plan = this.installer.last;
    // No installer pass yet for this config and generation: nothing true to say (the installer requeues us).
    if (!plan || plan.generation !== config.metadata.generation || plan.configUid !== config.metadata.uid || plan.uninstalling !== !!config.metadata.deletionTimestamp) return;
    const names = (this.installer.runtimeClasses?.(config) ?? desiredRuntimeClasses(config.spec)).map((rc) => rc.metadata.name);
    const conflicts = runtimeClassConflicts(names, (n) => this.runtimeClasses.get(n));
    // Verification classes are the agent's, not the users': status lists what users may pick.
    const published = names.filter((n) => {
      const rc = this.runtimeClasses.get(n);
      return rc && isOurs(rc) && rc.metadata.labels?.[PURPOSE_LABEL] !== "verify";
    });
    const status = desiredStatus({ config, plan, runtimeClasses: published, conflicts, refused: this.refusals?.list() ?? [], platform: this.installer.platform, now: this.now() });
    if (sameStatus(config.status, status)) return;
    const updated = await this.client.apply<SandboxConfig & KubeObject>({ apiVersion: API_VERSION, kind: SANDBOXCONFIG_KIND, metadata: { name: config.metadata.name }, status } as unknown as KubeObject, { subresource: "status" });
    this.configs.upsert(updated);
    for (const t of transitions(config.status, status)) this.events.record(this.target(config), t.type, t.reason, t.message);
    this.log.info({ counts: status.counts, ready: status.conditions?.[0]?.reason }, "status updated");
  }
}
