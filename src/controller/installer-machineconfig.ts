// The OpenShift installer: the Machine Config Operator configures the selected nodes through our
// MachineConfigPool + MachineConfig (src/openshift/reconcile.ts); this shell feeds it and reports a plan.
import type { SandboxConfig } from "../api/index.js";
import type { KubeClient, KubeObject } from "../kube/client.js";
import type { Informer } from "../kube/informer.js";
import { reconcileOpenShift, type OpenShiftReconcileResult, type PlatformStatus } from "../openshift/index.js";
import { DEFAULT_POOL_ROLE, MANAGED_BY, MASTER_POOL, machineConfigName, nodeRoleLabel } from "../openshift/render-machineconfig.js";
import { machineConfigRuntimeClasses } from "../openshift/render-runtimeclasses.js";
import { logger } from "../telemetry/logger.js";
import { machineConfigContent } from "./desired-machineconfig.js";
import type { RuntimeClassObject } from "./desired-runtimeclasses.js";
import type { NodeObject } from "./installer-daemonset.js";
import type { InstallerResult, NodeInstaller } from "./installer.js";
import { matchesSelector, type RolloutPlan } from "./policy-rollout.js";

export interface MachineConfigInstallerOptions {
  client: KubeClient;
  nodes: Informer<NodeObject>;
  /** How often to look at the MCO's progress while it works (no informer on pools; default 15 s). */
  recheckMs?: number;
  poolRole?: string;
}

/** The reconcileOpenShift result in the controller's plan shape, conditions included (stamped by the status writer). */
export function planFromOpenShift(config: SandboxConfig, r: OpenShiftReconcileResult): RolloutPlan {
  const podsOn = (node: string) => r.blockingPods.filter((p) => p.endsWith(` on ${node}`)).map((p) => p.slice(0, -` on ${node}`.length));
  return {
    nodes: r.nodes.map((summary) => ({ name: summary.name, delete: false, summary, blockedBy: podsOn(summary.name) })),
    budget: 0,
    inProgress: r.counts.progressing + r.counts.uninstalling,
    needPods: false,
    selected: r.counts.selected,
    uninstalling: !!config.metadata.deletionTimestamp,
    generation: config.metadata.generation,
    configUid: config.metadata.uid,
    release: [],
    conditions: r.conditions,
  };
}

export class MachineConfigInstaller implements NodeInstaller {
  platform: PlatformStatus = { kind: "OpenShift", installMethod: "MachineConfig" };
  /** What platform detection said (infrastructure type, notes); the pass completes it with the pool. */
  detected: PlatformStatus | undefined;
  last: RolloutPlan | undefined;
  private readonly log = logger("installer-machineconfig");

  constructor(private readonly o: MachineConfigInstallerOptions) {}

  private get role() {
    return this.o.poolRole ?? DEFAULT_POOL_ROLE;
  }

  async reconcile(config: SandboxConfig | null): Promise<InstallerResult> {
    if (!config) {
      // Only the finalizer lets a config go, and it waits for the uninstall: nothing to undo here.
      this.last = undefined;
      return { plan: { nodes: [], budget: 0, inProgress: 0, needPods: false, selected: 0, uninstalling: true, release: [] } };
    }
    // Copies: reconcileOpenShift updates the labels of the objects it is given.
    const selected = this.o.nodes.list().filter((n) => matchesSelector(config.spec.nodeSelector ?? {}, n.metadata.labels ?? {})).map((n) => structuredClone(n) as KubeObject);
    const r = await reconcileOpenShift(this.o.client, config, selected, {
      content: machineConfigContent(config.spec),
      poolRole: this.role,
      ...(this.detected ? { platform: this.detected } : {}),
      requeueAfterMs: this.o.recheckMs ?? 15_000,
      log: this.log,
    });
    this.platform = r.platform;
    this.last = planFromOpenShift(config, r);
    return { plan: this.last, ...(r.requeueAfterMs !== undefined ? { requeueAfter: r.requeueAfterMs } : {}) };
  }

  runtimeClasses(config: SandboxConfig): RuntimeClassObject[] {
    return machineConfigRuntimeClasses(config);
  }

  /** None of our MachineConfigs, no pool of ours, no node in our pool (fresh reads; all 404 where the MCO API is absent). */
  async nodesClean(): Promise<boolean> {
    const { client } = this.o;
    for (const role of [this.role, MASTER_POOL]) if (await client.getOrNull("MachineConfig", machineConfigName(role))) return false;
    const pool = await client.getOrNull<KubeObject>("MachineConfigPool", this.role);
    if (pool && pool.metadata.labels?.["app.kubernetes.io/managed-by"] === MANAGED_BY["app.kubernetes.io/managed-by"]) return false;
    const members = await client.list<KubeObject>("Node", { labelSelector: nodeRoleLabel(this.role), limit: 1 });
    return members.items.length === 0;
  }
}
