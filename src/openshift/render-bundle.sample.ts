// Sample inputs for render-bundle's unit table: a small Deployment spec and rules. The real bundle
// is rendered from src/manifests' controller Deployment and RBAC (src/manifests/files.ts).
import type { DeploymentSpec, PolicyRule } from "./render-bundle.js";

export const OPERATOR_VERSION = "0.1.0";
export const OPERATOR_IMAGE = `quay.io/sandbox-operator/sandbox-operator:v${OPERATOR_VERSION}`;
export const SERVICE_ACCOUNT = "sandbox-operator-controller";
export const DEPLOYMENT_NAME = "sandbox-operator-controller";

const labels = { "app.kubernetes.io/name": "sandbox-operator", "app.kubernetes.io/component": "controller" };

/** Sample: the controller Deployment's spec. */
export const placeholderDeploymentSpec: DeploymentSpec = {
  replicas: 1,
  selector: { matchLabels: labels },
  template: {
    metadata: { labels },
    spec: {
      serviceAccountName: SERVICE_ACCOUNT,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "controller",
          image: OPERATOR_IMAGE,
          args: ["controller", "--leader-elect"],
          env: [{ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }],
          ports: [{ name: "metrics", containerPort: 8080 }, { name: "health", containerPort: 8081 }],
          livenessProbe: { httpGet: { path: "/healthz", port: "health" }, periodSeconds: 20 },
          readinessProbe: { httpGet: { path: "/readyz", port: "health" }, periodSeconds: 10 },
          resources: { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } },
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
        },
      ],
    },
  },
};

/** Sample: cluster-wide rules of the controller. */
export const placeholderClusterRules: PolicyRule[] = [
  { apiGroups: ["sandboxing.dev"], resources: ["sandboxconfigs", "sandboxnodes"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
  { apiGroups: ["sandboxing.dev"], resources: ["sandboxconfigs/status", "sandboxconfigs/finalizers", "sandboxnodes/status"], verbs: ["get", "update", "patch"] },
  { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch", "patch"] },
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["node.k8s.io"], resources: ["runtimeclasses"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
  { apiGroups: ["machineconfiguration.openshift.io"], resources: ["machineconfigs", "machineconfigpools"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
  { apiGroups: ["config.openshift.io"], resources: ["infrastructures", "clusterversions"], verbs: ["get", "list", "watch"] },
];

/** Sample: rules in the operator's own namespace. */
export const placeholderNamespaceRules: PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
  { apiGroups: ["apps"], resources: ["daemonsets"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
];
