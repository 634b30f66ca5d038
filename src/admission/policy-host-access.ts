// Host access a sandbox does not contain (hostPath, hostNetwork, hostPID, hostIPC) and the pods the
// policy leaves alone (DaemonSet pods, exempt namespaces): pure functions used by policy.ts.
import type { HostAccessKind, SandboxConfigSpec } from "../api/index.js";

export const ALWAYS_EXEMPT_NAMESPACES = ["kube-system"] as const;
/**
 * Who creates DaemonSet pods: the controller's own service account (kube-controller-manager with
 * --use-service-account-credentials, as kubeadm and OpenShift run it) or the controller-manager's
 * identity. Only they are trusted with the exemption: anybody can write an ownerReference.
 */
export const DAEMONSET_CONTROLLER_USERS = ["system:serviceaccount:kube-system:daemon-set-controller", "system:kube-controller-manager"] as const;

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface HostAccess {
  kind: HostAccessKind;
  /** The field path, e.g. spec.volumes[2].hostPath. */
  field: string;
  /** The field with what it points at, for messages. */
  what: string;
}

interface PodLike {
  metadata: { ownerReferences?: OwnerReference[] };
  spec: { hostNetwork?: boolean; hostPID?: boolean; hostIPC?: boolean; volumes?: Array<{ name: string; hostPath?: { path: string } }> };
}

/** Every field of the pod that reaches the host whatever runtime runs it. */
export function hostAccess(pod: PodLike): HostAccess[] {
  const out: HostAccess[] = [];
  for (const kind of ["hostNetwork", "hostPID", "hostIPC"] as const) if (pod.spec[kind]) out.push({ kind, field: `spec.${kind}`, what: `spec.${kind}` });
  (pod.spec.volumes ?? []).forEach((v, i) => {
    if (v.hostPath) out.push({ kind: "hostPath", field: `spec.volumes[${i}].hostPath`, what: `spec.volumes[${i}].hostPath (volume ${v.name}, path ${v.hostPath.path})` });
  });
  return out;
}

/** The host access kinds SandboxConfig grants a namespace (spec.podPolicy.allowedHostAccess). */
export function allowedHostAccess(config: SandboxConfigSpec | null, namespace: string): Set<HostAccessKind> {
  const grant = config?.podPolicy?.allowedHostAccess?.find((g) => g.namespace === namespace);
  return new Set(grant?.kinds ?? []);
}

/** The pod's host access that its namespace was not granted. */
export function refusedHostAccess(pod: PodLike, config: SandboxConfigSpec | null, namespace: string): HostAccess[] {
  const allowed = allowedHostAccess(config, namespace);
  return hostAccess(pod).filter((h) => !allowed.has(h.kind));
}

/** The pod's host access that its namespace was granted (recorded in the decision annotation). */
export function grantedHostAccess(pod: PodLike, config: SandboxConfigSpec | null, namespace: string): HostAccess[] {
  const allowed = allowedHostAccess(config, namespace);
  return hostAccess(pod).filter((h) => allowed.has(h.kind));
}

const REACHES: Record<HostAccessKind, string> = {
  hostPath: "the node's files",
  hostNetwork: "the node's network",
  hostPID: "the node's processes",
  hostIPC: "the node's IPC",
};

/** The refusal: names every field, what it reaches, and the two ways out; `where` (the pod) may be empty. */
export function hostAccessRefusal(where: string, namespace: string, refused: HostAccess[]): string {
  const kinds = [...new Set(refused.map((h) => h.kind))];
  const fields = refused.map((h) => h.what).join(", ");
  const verb = refused.length === 1 ? "reaches" : "reach";
  return (
    `${where ? `${where}: ` : ""}${fields} ${verb} the host even from a sandbox (${kinds.map((k) => REACHES[k]).join(", ")}: a VM or gVisor does not contain that), ` +
    `and namespace ${namespace} enforces sandboxing: remove ${refused.length === 1 ? "it" : "them"}, or have a cluster admin grant ${kinds.join(", ")} to namespace ${namespace} ` +
    `in SandboxConfig cluster spec.podPolicy.allowedHostAccess`
  );
}

/** A pod the DaemonSet controller creates for its DaemonSet (controller ownerReference + the controller's identity). */
export function isDaemonSetPod(pod: PodLike, userName: string | undefined): boolean {
  if (!userName || !(DAEMONSET_CONTROLLER_USERS as readonly string[]).includes(userName)) return false;
  return (pod.metadata.ownerReferences ?? []).some((r) => r.kind === "DaemonSet" && r.apiVersion.startsWith("apps/") && r.controller === true);
}

/** Does the config leave DaemonSet pods alone (spec.podPolicy.exemptions.daemonSets, default true)? */
export const exemptsDaemonSets = (config: SandboxConfigSpec | null) => config?.podPolicy?.exemptions?.daemonSets ?? true;

/** Namespaces the policy never touches: kube-system, the operator's, and the configured ones. */
export function exemptNamespaces(config: SandboxConfigSpec | null, operatorNamespace: string): string[] {
  return [...new Set([...ALWAYS_EXEMPT_NAMESPACES, operatorNamespace, ...(config?.podPolicy?.exemptions?.namespaces ?? [])])];
}
