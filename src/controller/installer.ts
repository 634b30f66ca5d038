// The seam for "how nodes get configured": the Kubernetes path drives a node agent (DaemonSet)
// through SandboxNodes; an OpenShift implementation can render MachineConfigs behind the same interface.
import type { SandboxConfig, SandboxConfigStatus } from "../api/index.js";
import type { RuntimeClassObject } from "./desired-runtimeclasses.js";
import type { RolloutPlan } from "./policy-rollout.js";

export interface InstallerResult {
  /** The decisions of this pass; the status controller summarises it. */
  plan: RolloutPlan;
  /** Look again after this many ms even without an event (e.g. pods holding an uninstall). */
  requeueAfter?: number;
}

export interface NodeInstaller {
  readonly platform: NonNullable<SandboxConfigStatus["platform"]>;
  /** One level-based pass for the config (null or deleting = uninstall everywhere). Idempotent. */
  reconcile(config: SandboxConfig | null): Promise<InstallerResult>;
  /** The last plan acted on, if any pass completed since start. */
  readonly last: RolloutPlan | undefined;
  /** True when nothing of ours is left on any node (uninstall may finish). Reads the apiserver, not the cache. */
  nodesClean(): Promise<boolean>;
  /** The RuntimeClasses this path publishes, when not desiredRuntimeClasses(spec) (e.g. fewer backends). */
  runtimeClasses?(config: SandboxConfig): RuntimeClassObject[] | undefined;
}
