// Renders the install manifests (namespace, per-component RBAC, controller, agent, webhook,
// the agent's own-node admission policy, optional ServiceMonitor) as plain objects; pure.
import { API_VERSION, GROUP, SANDBOXCONFIG_KIND, SANDBOXCONFIG_NAME } from "../api/index.js";
import { VERIFY_CLASS_PREFIX } from "../render/desired-runtimeclasses.js";
import { controllerScopePolicy } from "./render-policies.js";
import {
  AGENT,
  AGENT_HOST_ROOT,
  AGENT_NODE_LABEL,
  AGENT_NODE_LABEL_VALUE,
  AGENT_NODE_POLICY,
  AGENT_PAYLOAD_DIR,
  AGENT_SCC,
  CONTROLLER,
  ENTRYPOINTS,
  LEADER_LEASE,
  NAMESPACE,
  NODE_BIN,
  PART_OF,
  PORTS,
  REQUIRED_SCC_ANNOTATION,
  RESTRICTED_SCC,
  WEBHOOK,
  WEBHOOK_CA_SECRET,
  WEBHOOK_CERT_SECRET,
  WEBHOOK_CONFIGURATION,
  VERIFY_POD_POLICY,
  imageReference,
  type ImageRef,
} from "./names.js";

/** A Kubernetes object as we render it: typed enough to name it, free-form below. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface DeployOptions {
  image: ImageRef;
  /** Package version, stamped into the app.kubernetes.io/version label. */
  version: string;
  /**
   * HOOK for the admission helper's builder: returns the Validating/MutatingWebhookConfigurations
   * that point at the webhook Service. Until that builder is wired, none are rendered.
   */
  webhookConfigurations?: (ctx: WebhookContext) => Manifest[];
}

/** What the webhook-configuration builder needs to point at the webhook. */
export interface WebhookContext {
  namespace: string;
  serviceName: string;
  servicePort: number;
  configurationName: string;
  /** The webhook's own CA (self-managed certificates). */
  caSecret: string;
  /** cert-manager's serving-certificate Secret, when cert-manager is used. */
  certSecret: string;
}

export const WEBHOOK_CONTEXT: WebhookContext = {
  namespace: NAMESPACE,
  serviceName: WEBHOOK,
  servicePort: 443,
  configurationName: WEBHOOK_CONFIGURATION,
  caSecret: WEBHOOK_CA_SECRET,
  certSecret: WEBHOOK_CERT_SECRET,
};

type Component = "controller" | "agent" | "webhook";

function labels(component: Component, version: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": PART_OF,
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/version": version,
  };
}

function selector(component: Component): Record<string, string> {
  return { "app.kubernetes.io/name": PART_OF, "app.kubernetes.io/component": component };
}

const meta = (name: string, l: Record<string, string>, namespaced = true) => (namespaced ? { name, namespace: NAMESPACE, labels: l } : { name, labels: l });

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

function rbac(component: Component, name: string, version: string, clusterRules: Rule[], namespaceRules: Rule[]): Manifest[] {
  const l = labels(component, version);
  const subject = [{ kind: "ServiceAccount", name, namespace: NAMESPACE }];
  const out: Manifest[] = [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(name, l), automountServiceAccountToken: true },
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: meta(name, l, false), rules: clusterRules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: meta(name, l, false),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: subject,
    },
  ];
  if (namespaceRules.length) {
    out.push(
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: meta(name, l), rules: namespaceRules },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: meta(name, l), roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name }, subjects: subject },
    );
  }
  return out;
}

const READ = ["get", "list", "watch"];

/**
 * The controller: reconciles configs, nodes, SandboxNodes, RuntimeClasses; elects a leader. RBAC
 * cannot name fields or objects not yet created: the controller-scope ValidatingAdmissionPolicy
 * (render-policies.ts) keeps its Node patches to our labels and its writes to objects labelled ours.
 */
export const CONTROLLER_RULES: Rule[] = [
  // Every verb here is one the code uses: the cluster tier compares these roles with the apiserver's
  // audit log of the components' requests (test/cluster/rbac-use.suite.ts). Informers list + watch;
  // server-side apply is patch, and create when the object is new.
  { apiGroups: [GROUP], resources: ["sandboxconfigs"], verbs: ["list", "watch", "patch"] },
  { apiGroups: [GROUP], resources: ["sandboxconfigs/status"], verbs: ["patch"] },
  // OpenShift's OwnerReferencesPermissionEnforcement: SandboxNodes block their SandboxConfig's deletion.
  { apiGroups: [GROUP], resources: ["sandboxconfigs/finalizers"], verbs: ["update"] },
  { apiGroups: [GROUP], resources: ["sandboxnodes"], verbs: ["list", "watch", "create", "patch", "delete"] },
  { apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch", "patch"] },
  // Uninstall waits while pods use our RuntimeClasses and names them; a drain lists a node's pods (a list per node).
  { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
  // spec.rollout.drain: evictions only (the apiserver enforces PodDisruptionBudgets), never a pod delete.
  { apiGroups: [""], resources: ["pods/eviction"], verbs: ["create"] },
  { apiGroups: ["node.k8s.io"], resources: ["runtimeclasses"], verbs: ["list", "watch", "create", "patch", "delete"] },
  { apiGroups: [""], resources: ["events"], verbs: ["create"] },
  // OpenShift path (issue 6): MachineConfig rendering and pool tracking, platform detection.
  { apiGroups: ["machineconfiguration.openshift.io"], resources: ["machineconfigs", "machineconfigpools"], verbs: ["get", "create", "patch", "delete"] },
  { apiGroups: ["config.openshift.io"], resources: ["infrastructures"], verbs: ["get"] },
];
export const CONTROLLER_NAMESPACE_RULES: Rule[] = [
  // create cannot be limited by name (the Lease does not exist yet); get/update can.
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "update"], resourceNames: [LEADER_LEASE] },
];

/**
 * The agent: reads SandboxNodes and writes their status. RBAC cannot say "only your own node"
 * for a cluster-scoped object shared by every agent; the ValidatingAdmissionPolicy below does.
 */
export const AGENT_RULES: Rule[] = [
  { apiGroups: [GROUP], resources: ["sandboxnodes"], verbs: ["list", "watch"] },
  { apiGroups: [GROUP], resources: ["sandboxnodes/status"], verbs: ["patch"] },
  // OpenShift: admit the agent's pods under the built-in privileged SCC (docs/install-openshift.md).
  { apiGroups: ["security.openshift.io"], resources: ["securitycontextconstraints"], verbs: ["use"], resourceNames: [AGENT_SCC] },
];
/** In its own namespace: verification Pods on its node (docs/adr/0004-verify-with-pods.md). */
export const AGENT_NAMESPACE_RULES: Rule[] = [
  { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "create", "delete"] },
  { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
  { apiGroups: [""], resources: ["events"], verbs: ["list"] },
];

/** The webhook: reads what its policy needs, keeps its certificate and caBundle current. */
export const WEBHOOK_RULES: Rule[] = [
  { apiGroups: [GROUP], resources: ["sandboxconfigs"], verbs: ["list", "watch"] },
  { apiGroups: ["node.k8s.io"], resources: ["runtimeclasses"], verbs: READ },
  // Its caBundle, by server-side apply onto the configurations the install manifests created.
  {
    apiGroups: ["admissionregistration.k8s.io"],
    resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
    verbs: ["patch"],
    resourceNames: [WEBHOOK_CONFIGURATION],
  },
];
export const WEBHOOK_NAMESPACE_RULES: Rule[] = [
  // No create: a service account that may create Secrets can mint a token for any other service
  // account in the namespace (type kubernetes.io/service-account-token). Its CA Secret is created
  // by the install manifests (webhookCaSecret); it reads cert-manager's serving certificate.
  { apiGroups: [""], resources: ["secrets"], verbs: ["get", "update"], resourceNames: [WEBHOOK_CA_SECRET] },
  { apiGroups: [""], resources: ["secrets"], verbs: ["get"], resourceNames: [WEBHOOK_CERT_SECRET] },
];

/** The webhook's CA Secret, empty until the webhook writes its CA (type Opaque, immutable). */
export function webhookCaSecret(version: string): Manifest {
  return { apiVersion: "v1", kind: "Secret", metadata: meta(WEBHOOK_CA_SECRET, labels("webhook", version)), type: "Opaque" };
}

export const serviceAccountUser = (name: string) => `system:serviceaccount:${NAMESPACE}:${name}`;

const restrictedContainer = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/**
 * No runAsUser/runAsGroup/fsGroup: OpenShift's restricted-v2 SCC assigns a UID from the
 * namespace's range and refuses any other; elsewhere the image's numeric USER (65532) applies and
 * the kubelet's runAsNonRoot check passes on it.
 */
const restrictedPod = { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };

const requiredScc = (scc: string) => ({ [REQUIRED_SCC_ANNOTATION]: scc });

const fieldEnv = (name: string, fieldPath: string) => ({ name, valueFrom: { fieldRef: { fieldPath } } });

const probes = {
  readinessProbe: { httpGet: { path: "/readyz", port: "health" }, periodSeconds: 10, failureThreshold: 3 },
  livenessProbe: { httpGet: { path: "/healthz", port: "health" }, initialDelaySeconds: 15, periodSeconds: 20, failureThreshold: 3 },
};

const spreadAcrossNodes = (component: Component) => ({
  podAntiAffinity: {
    preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector(component) } } },
    ],
  },
});


function service(component: Component, name: string, version: string, ports: Array<{ name: string; port: number; targetPort: string }>): Manifest {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(name, labels(component, version)),
    spec: { type: "ClusterIP", selector: selector(component), ports: ports.map((p) => ({ ...p, protocol: "TCP" })) },
  };
}

export function namespace(version: string): Manifest {
  return {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: {
      name: NAMESPACE,
      labels: {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/version": version,
        // The agent is privileged (it probes /dev/kvm and rewrites the node's CRI config); the
        // controller and webhook still run with the restricted profile's settings.
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/audit": "restricted",
      },
    },
  };
}

export function controller(opts: DeployOptions): Manifest[] {
  const l = labels("controller", opts.version);
  const deployment: Manifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(CONTROLLER, l),
    spec: {
      replicas: 2,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selector("controller") },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1, maxSurge: 1 } },
      template: {
        metadata: { labels: l, annotations: requiredScc(RESTRICTED_SCC) },
        spec: {
          serviceAccountName: CONTROLLER,
          securityContext: restrictedPod,
          affinity: spreadAcrossNodes("controller"),
          nodeSelector: { "kubernetes.io/os": "linux" },
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: "controller",
              image: imageReference(opts.image),
              imagePullPolicy: "IfNotPresent",
              command: [NODE_BIN, ENTRYPOINTS.controller],
              // Flags of src/controller/main.ts; it names its Lease sandbox-operator-controller.
              args: [`--metrics-port=${PORTS.metrics}`, `--health-port=${PORTS.health}`, "--leader-elect=true"],
              env: [fieldEnv("POD_NAME", "metadata.name"), fieldEnv("POD_NAMESPACE", "metadata.namespace")],
              ports: [
                { name: "metrics", containerPort: PORTS.metrics, protocol: "TCP" },
                { name: "health", containerPort: PORTS.health, protocol: "TCP" },
              ],
              ...probes,
              resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
              securityContext: restrictedContainer,
            },
          ],
        },
      },
    },
  };
  return [
    ...rbac("controller", CONTROLLER, opts.version, CONTROLLER_RULES, CONTROLLER_NAMESPACE_RULES),
    deployment,
    // No PodDisruptionBudget: on a single node, one that keeps a replica would block the drain for
    // good (its replacement cannot schedule on the cordoned node). The controller is leader-elected
    // and level-based: losing both replicas for a drain only pauses reconciling.
    ...controllerScopePolicy(labels("controller", opts.version)),
    service("controller", `${CONTROLLER}-metrics`, opts.version, [{ name: "metrics", port: PORTS.metrics, targetPort: "metrics" }]),
  ];
}

/** The ValidatingAdmissionPolicy (+ binding) that keeps each agent to its own SandboxNode. */
export function agentNodePolicy(version: string): Manifest[] {
  const l = labels("agent", version);
  const nodeClaim = "authentication.kubernetes.io/node-name";
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: meta(AGENT_NODE_POLICY, l, false),
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [
            { apiGroups: [GROUP], apiVersions: ["*"], operations: ["CREATE", "UPDATE", "DELETE"], resources: ["sandboxnodes", "sandboxnodes/status"] },
          ],
        },
        // Only the agent's service account is checked; the controller and admins are not.
        matchConditions: [{ name: "is-agent", expression: `request.userInfo.username == '${serviceAccountUser(AGENT)}'` }],
        variables: [
          {
            name: "nodeName",
            expression: `has(request.userInfo.extra) && '${nodeClaim}' in request.userInfo.extra && size(request.userInfo.extra['${nodeClaim}']) == 1 ? request.userInfo.extra['${nodeClaim}'][0] : ''`,
          },
        ],
        validations: [
          {
            expression: "variables.nodeName != '' && variables.nodeName == request.name",
            reason: "Forbidden",
            messageExpression:
              `variables.nodeName == '' ? 'the agent may write SandboxNode status only with a service account token bound to its node (${nodeClaim} is missing); use the pod\\'s projected token' : ` +
              `'the agent on node ' + variables.nodeName + ' may write only SandboxNode ' + variables.nodeName + ', not ' + request.name`,
          },
        ],
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: meta(AGENT_NODE_POLICY, l, false),
      spec: { policyName: AGENT_NODE_POLICY, validationActions: ["Deny"] },
    },
  ];
}

/**
 * Verification RuntimeClasses carry no scheduling gate, so only the agent may use them: in its
 * namespace, on the node its token is bound to. Everyone else gets a clear refusal.
 */
export function verifyPodPolicy(version: string): Manifest[] {
  const l = labels("agent", version);
  const nodeClaim = "authentication.kubernetes.io/node-name";
  const agentUser = serviceAccountUser(AGENT);
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: meta(VERIFY_POD_POLICY, l, false),
      spec: {
        failurePolicy: "Fail",
        matchConstraints: { resourceRules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods"] }] },
        matchConditions: [
          { name: "uses-verify-class", expression: `has(object.spec.runtimeClassName) && object.spec.runtimeClassName.startsWith('${VERIFY_CLASS_PREFIX}')` },
        ],
        variables: [
          {
            name: "nodeName",
            expression: `has(request.userInfo.extra) && '${nodeClaim}' in request.userInfo.extra && size(request.userInfo.extra['${nodeClaim}']) == 1 ? request.userInfo.extra['${nodeClaim}'][0] : ''`,
          },
        ],
        validations: [
          {
            expression: `request.userInfo.username == '${agentUser}' && request.namespace == '${NAMESPACE}'`,
            reason: "Forbidden",
            messageExpression: `'RuntimeClass ' + object.spec.runtimeClassName + ' is only for verification Pods of the sandbox-operator agent; use the RuntimeClass without the ${VERIFY_CLASS_PREFIX} prefix (for example sandboxed)'`,
          },
          {
            expression: "variables.nodeName != '' && has(object.spec.nodeName) && object.spec.nodeName == variables.nodeName",
            reason: "Forbidden",
            messageExpression: `'the agent may run verification Pods only on the node its token is bound to (' + (variables.nodeName == '' ? '${nodeClaim} missing' : variables.nodeName) + '), with spec.nodeName set to it'`,
          },
        ],
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: meta(VERIFY_POD_POLICY, l, false),
      spec: { policyName: VERIFY_POD_POLICY, validationActions: ["Deny"] },
    },
  ];
}

export function agent(opts: DeployOptions): Manifest[] {
  const l = labels("agent", opts.version);
  const daemonSet: Manifest = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: meta(AGENT, l),
    spec: {
      selector: { matchLabels: selector("agent") },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: l, annotations: requiredScc(AGENT_SCC) },
        spec: {
          serviceAccountName: AGENT,
          // Only nodes the controller selected (it sets this label from SandboxConfig.spec.nodeSelector).
          nodeSelector: { [AGENT_NODE_LABEL]: AGENT_NODE_LABEL_VALUE, "kubernetes.io/os": "linux" },
          priorityClassName: "system-node-critical",
          // A node agent must run on tainted nodes too (control-plane, dedicated pools).
          tolerations: [{ operator: "Exists" }],
          terminationGracePeriodSeconds: 60,
          // The host's PID namespace: PID 1 is the host's init, whose namespaces `nsenter` enters to run
          // the host's `systemctl restart`, and /proc shows the CRI runtime's process with its --config.
          hostPID: true,
          containers: [
            {
              name: "agent",
              image: imageReference(opts.image),
              imagePullPolicy: "IfNotPresent",
              command: [NODE_BIN, ENTRYPOINTS.agent],
              // Flags of src/agent/main.ts; NODE_NAME (downward API) names its SandboxNode.
              // The agent's own image is the default verification image: pinned by digest, already on
              // the node, no other image to mirror (SandboxConfig spec.verification overrides it).
              args: [`--host-root=${AGENT_HOST_ROOT}`, `--payload-dir=${AGENT_PAYLOAD_DIR}`, "--restart-strategy=systemd", `--health-port=${PORTS.health}`, `--verify-image=${imageReference(opts.image)}`, ...(opts.image.gvisorPayload ? [`--gvisor-payload=${imageReference(opts.image.gvisorPayload)}`] : [])],
              env: [fieldEnv("NODE_NAME", "spec.nodeName"), fieldEnv("POD_NAMESPACE", "metadata.namespace")],
              ports: [{ name: "health", containerPort: PORTS.health, protocol: "TCP" }],
              livenessProbe: probes.livenessProbe,
              resources: { requests: { cpu: "20m", memory: "64Mi" }, limits: { memory: "256Mi" } },
              // Privileged: opening /dev/kvm and /dev/vhost-vsock to probe them, and entering PID 1's
              // namespaces to restart the node's CRI runtime, need it. No host network or IPC namespace.
              // Root by design (it writes root-owned files on the host), the one fixed UID we render:
              // the image's USER is 65532, and the privileged SCC (runAsUser RunAsAny) keeps UID 0.
              securityContext: { privileged: true, runAsUser: 0, readOnlyRootFilesystem: true },
              volumeMounts: [{ name: "host-root", mountPath: AGENT_HOST_ROOT, mountPropagation: "HostToContainer" }],
            },
          ],
          // One mount: the host root, for the CRI config (/etc/containerd, /etc/crio), the runtime
          // binaries it installs (/opt/sandbox-operator), the CRI socket (/run/containerd,
          // /var/run/crio) and systemd's D-Bus socket. See docs/install-kubernetes.md.
          volumes: [{ name: "host-root", hostPath: { path: "/", type: "Directory" } }],
        },
      },
    },
  };
  return [...rbac("agent", AGENT, opts.version, AGENT_RULES, AGENT_NAMESPACE_RULES), daemonSet, ...agentNodePolicy(opts.version), ...verifyPodPolicy(opts.version)];
}

export function webhook(opts: DeployOptions): Manifest[] {
  const l = labels("webhook", opts.version);
  const deployment: Manifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(WEBHOOK, l),
    spec: {
      replicas: 2,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selector("webhook") },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: l, annotations: requiredScc(RESTRICTED_SCC) },
        spec: {
          serviceAccountName: WEBHOOK,
          securityContext: restrictedPod,
          affinity: spreadAcrossNodes("webhook"),
          nodeSelector: { "kubernetes.io/os": "linux" },
          containers: [
            {
              name: "webhook",
              image: imageReference(opts.image),
              imagePullPolicy: "IfNotPresent",
              command: [NODE_BIN, ENTRYPOINTS.webhook],
              // Flags of src/admission/main.ts.
              args: [`--namespace=${NAMESPACE}`, `--service-name=${WEBHOOK}`, `--port=${PORTS.webhook}`, `--health-port=${PORTS.health}`, "--cert-source=self"],
              ports: [
                { name: "https", containerPort: PORTS.webhook, protocol: "TCP" },
                { name: "health", containerPort: PORTS.health, protocol: "TCP" },
              ],
              ...probes,
              resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
              securityContext: restrictedContainer,
            },
          ],
        },
      },
    },
  };
  return [
    ...rbac("webhook", WEBHOOK, opts.version, WEBHOOK_RULES, WEBHOOK_NAMESPACE_RULES),
    webhookCaSecret(opts.version),
    deployment,
    // No PodDisruptionBudget (see the controller): two replicas spread across nodes and a rolling
    // update that keeps both (maxUnavailable 0) cover voluntary disruption without blocking a drain.
    service("webhook", WEBHOOK, opts.version, [{ name: "https", port: WEBHOOK_CONTEXT.servicePort, targetPort: "https" }]),
    ...(opts.webhookConfigurations?.(WEBHOOK_CONTEXT) ?? []),
  ];
}

/** Optional: a prometheus-operator ServiceMonitor for the controller's metrics. */
export function serviceMonitor(version: string): Manifest {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: meta(CONTROLLER, labels("controller", version)),
    spec: {
      selector: { matchLabels: selector("controller") },
      endpoints: [{ port: "metrics", path: "/metrics", interval: "30s" }],
    },
  };
}

/** The sample SandboxConfig (examples/sandboxconfig.yaml). */
export function sampleSandboxConfig() {
  return {
    apiVersion: API_VERSION,
    kind: SANDBOXCONFIG_KIND,
    metadata: { name: SANDBOXCONFIG_NAME },
    spec: {
      nodeSelector: { matchLabels: { "kubernetes.io/os": "linux" } },
      runtimes: { allowed: ["kata-qemu", "gvisor"], preferred: ["kata-qemu", "gvisor"] },
      runtimeClassName: "sandboxed",
      rollout: { maxUnavailable: 1, drain: false },
      uninstall: { whenPodsRun: "Wait" },
      podPolicy: { defaultMode: "off" },
      logLevel: "info",
    },
  };
}

/** Everything `sandboxctl install` applies, in apply order (uninstall deletes in reverse). */
export function installManifests(opts: DeployOptions & { serviceMonitor?: boolean }, crdObjects: Manifest[]): Manifest[] {
  return [
    ...crdObjects,
    namespace(opts.version),
    ...controller(opts),
    ...agent(opts),
    ...webhook(opts),
    ...(opts.serviceMonitor ? [serviceMonitor(opts.version)] : []),
  ];
}
