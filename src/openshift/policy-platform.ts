// Pure decisions for the OpenShift path: which platform this is, which install method applies,
// and which MachineConfigPool the selected nodes are configured through.
import type { SandboxConfigStatus } from "../api/index.js";
import { DEFAULT_POOL_ROLE, MASTER_POOL, nodeRoleLabel } from "./render-machineconfig.js";

export type InstallMethodSetting = "Auto" | "DaemonSet" | "MachineConfig";
export type PlatformStatus = NonNullable<SandboxConfigStatus["platform"]>;

/** What discovery found; gathered by detectPlatformFacts (platform.ts). */
export interface PlatformFacts {
  /** machineconfiguration.openshift.io/v1 is served (the Machine Config Operator's API). */
  machineConfigApi: boolean;
  /** config.openshift.io/v1 is served (OpenShift's cluster configuration API). */
  configApi: boolean;
  infrastructure?: {
    platformType?: string;
    controlPlaneTopology?: string;
    infrastructureTopology?: string;
  };
  /** Why Infrastructure/cluster could not be read, when the API exists but the object does not. */
  infrastructureError?: string;
}

export interface PlatformDecision {
  status: PlatformStatus;
  /** Set when the requested install method cannot work here; nothing may be installed then. */
  error?: { reason: string; message: string };
  singleReplica: boolean;
}

/** Auto = MachineConfig where the MCO runs, DaemonSet elsewhere; MachineConfig without the MCO is an error, not a fallback. */
export function decidePlatform(facts: PlatformFacts, requested: InstallMethodSetting = "Auto"): PlatformDecision {
  const openshift = facts.configApi || facts.machineConfigApi;
  const infra = facts.infrastructure;
  const singleReplica = infra?.controlPlaneTopology === "SingleReplica" || infra?.infrastructureTopology === "SingleReplica";
  const status: PlatformStatus = { kind: openshift ? "OpenShift" : "Kubernetes", installMethod: "DaemonSet" };
  if (infra?.platformType) status.infrastructure = infra.platformType;
  const notes: string[] = [];
  if (facts.infrastructureError) notes.push(facts.infrastructureError);

  if (requested === "MachineConfig" && !facts.machineConfigApi) {
    const where = openshift ? "this OpenShift cluster does not serve machineconfiguration.openshift.io/v1 (e.g. a hosted control plane)" : "this cluster is not OpenShift: machineconfiguration.openshift.io/v1 is not served";
    const message = `SandboxConfig cluster spec.installMethod is MachineConfig, but ${where}; set spec.installMethod to DaemonSet or Auto`;
    return { status: { ...status, message }, error: { reason: "MachineConfigUnavailable", message }, singleReplica };
  }
  if (requested === "MachineConfig" || (requested === "Auto" && facts.machineConfigApi)) {
    status.installMethod = "MachineConfig";
    notes.unshift(requested === "Auto" ? "the Machine Config Operator configures the nodes (spec.installMethod Auto on OpenShift)" : "the Machine Config Operator configures the nodes");
  } else if (requested === "Auto" && openshift) {
    notes.unshift("OpenShift without the Machine Config Operator API: the node agent DaemonSet configures the nodes");
  }
  if (singleReplica) notes.push("single-node control plane (SingleReplica)");
  if (notes.length) status.message = notes.join("; ");
  return { status, singleReplica };
}

export interface NodeLabels {
  name: string;
  labels?: Record<string, string>;
}

export interface PoolChoice {
  /** The pool whose nodes get our MachineConfig. */
  pool: string;
  /** True when we create and own the pool; false for the master pool of compact clusters. */
  custom: boolean;
  message: string;
  error?: { reason: string; message: string };
}

const isControlPlane = (n: NodeLabels) => n.labels?.[nodeRoleLabel(MASTER_POOL)] !== undefined || n.labels?.["node-role.kubernetes.io/control-plane"] !== undefined;

/**
 * Control-plane nodes cannot join a custom pool (the MCO refuses a node in master and a custom
 * pool), so when the selected nodes are masters (single-node and compact 3-node clusters, where
 * masters run workloads) our MachineConfig goes to the master pool. A selection that mixes
 * masters and worker-only nodes is refused: one MachineConfig cannot target both safely.
 */
export function choosePool(selected: NodeLabels[], role: string = DEFAULT_POOL_ROLE): PoolChoice {
  const masters = selected.filter(isControlPlane);
  if (selected.length > 0 && masters.length === selected.length) {
    return {
      pool: MASTER_POOL,
      custom: false,
      message: `compact cluster: the selected nodes are control-plane nodes, which cannot join a custom pool, so the MachineConfig targets the master pool and every node of that pool gets it`,
    };
  }
  if (masters.length > 0) {
    const names = masters.map((n) => n.name).sort().join(", ");
    const message = `SandboxConfig cluster spec.nodeSelector selects control-plane nodes (${names}) together with worker-only nodes; the MachineConfig path configures either the master pool or a pool of workers: narrow spec.nodeSelector to one kind`;
    return { pool: role, custom: true, message, error: { reason: "MixedNodeRoles", message } };
  }
  return { pool: role, custom: true, message: `the MachineConfig targets the ${role} pool; selected nodes join it through the label ${nodeRoleLabel(role)}` };
}
