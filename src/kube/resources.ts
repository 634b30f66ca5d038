// Where each kind we use lives in the REST API. A fixed table instead of discovery: the
// operator only touches these kinds, and a typo fails loudly here.
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

const r = (group: string, version: string, plural: string, namespaced: boolean): ResourceRef => ({ group, version, plural, namespaced });

const TABLE: Record<string, ResourceRef> = {
  Namespace: r("", "v1", "namespaces", false),
  Node: r("", "v1", "nodes", false),
  Pod: r("", "v1", "pods", true),
  Event: r("", "v1", "events", true),
  Secret: r("", "v1", "secrets", true),
  ConfigMap: r("", "v1", "configmaps", true),
  Service: r("", "v1", "services", true),
  ServiceAccount: r("", "v1", "serviceaccounts", true),
  Endpoints: r("", "v1", "endpoints", true),
  Lease: r("coordination.k8s.io", "v1", "leases", true),
  RuntimeClass: r("node.k8s.io", "v1", "runtimeclasses", false),
  Deployment: r("apps", "v1", "deployments", true),
  DaemonSet: r("apps", "v1", "daemonsets", true),
  PodDisruptionBudget: r("policy", "v1", "poddisruptionbudgets", true),
  PriorityClass: r("scheduling.k8s.io", "v1", "priorityclasses", false),
  ClusterRole: r("rbac.authorization.k8s.io", "v1", "clusterroles", false),
  ClusterRoleBinding: r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", false),
  Role: r("rbac.authorization.k8s.io", "v1", "roles", true),
  RoleBinding: r("rbac.authorization.k8s.io", "v1", "rolebindings", true),
  CustomResourceDefinition: r("apiextensions.k8s.io", "v1", "customresourcedefinitions", false),
  ValidatingWebhookConfiguration: r("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", false),
  MutatingWebhookConfiguration: r("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", false),
  ValidatingAdmissionPolicy: r("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", false),
  ValidatingAdmissionPolicyBinding: r("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings", false),
  SandboxConfig: r("sandboxing.dev", "v1alpha1", "sandboxconfigs", false),
  SandboxNode: r("sandboxing.dev", "v1alpha1", "sandboxnodes", false),
  MachineConfig: r("machineconfiguration.openshift.io", "v1", "machineconfigs", false),
  MachineConfigPool: r("machineconfiguration.openshift.io", "v1", "machineconfigpools", false),
  ContainerRuntimeConfig: r("machineconfiguration.openshift.io", "v1", "containerruntimeconfigs", false),
  Infrastructure: r("config.openshift.io", "v1", "infrastructures", false),
  ClusterVersion: r("config.openshift.io", "v1", "clusterversions", false),
  ServiceMonitor: r("monitoring.coreos.com", "v1", "servicemonitors", true),
  SubjectAccessReview: r("authorization.k8s.io", "v1", "subjectaccessreviews", false),
};

export function resourceFor(kind: string): ResourceRef {
  const ref = TABLE[kind];
  if (!ref) throw new Error(`no REST mapping for kind ${kind}: add it to src/kube/resources.ts`);
  return ref;
}

export function apiVersionOf(kind: string): string {
  const ref = resourceFor(kind);
  return ref.group ? `${ref.group}/${ref.version}` : ref.version;
}
