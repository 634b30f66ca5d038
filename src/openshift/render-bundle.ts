// Pure builder of the OLM bundle (registry+v1): the ClusterServiceVersion, the CRDs, the plain
// manifests OLM creates as they are, and metadata/annotations.yaml, from Deployments and RBAC rules.
import { SandboxConfigSpec, SandboxNodeSpec } from "../api/index.js";

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** apps/v1 DeploymentSpec, as far as the builder cares; passed through unchanged. */
export interface DeploymentSpec {
  replicas?: number;
  selector: { matchLabels: Record<string, string> };
  template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: { serviceAccountName: string; [k: string]: unknown } };
  [k: string]: unknown;
}

export interface CrdLike {
  metadata: { name: string };
  spec: { group: string; names: { kind: string; plural: string }; versions: Array<{ name: string }> };
}

/** One service account's rules: OLM turns each into a (Cluster)Role bound to that service account, creating the account. */
export interface Permission {
  serviceAccountName: string;
  rules: PolicyRule[];
}

/** An object OLM creates from manifests/ unchanged, in the install namespace (Service, PodDisruptionBudget...). */
export interface PlainManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/**
 * Kinds OLM creates from a bundle's manifests/ besides the CSV and CRDs (operator-registry's list
 * of supported bundle objects). DaemonSets, SCCs, webhook configurations and admission policies
 * are not among them: refused here rather than left for OLM to reject at install time.
 */
export const OLM_PLAIN_KINDS = [
  "Secret", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "ServiceAccount", "Service", "Role", "RoleBinding",
  "PrometheusRule", "ServiceMonitor", "PodDisruptionBudget", "PriorityClass", "VerticalPodAutoscaler",
  "ConsoleYAMLSample", "ConsoleQuickStart", "ConsoleCLIDownload", "ConsoleLink", "NetworkPolicy",
] as const;

export interface BundleInputs {
  version: string;
  image: string;
  /** The default gVisor payload image (docs/payloads.md), listed for mirroring with the operator's. */
  gvisorPayload?: string;
  /** The install strategy's Deployments (OLM's only workload kind), each with its spec. */
  deployments: Array<{ name: string; spec: DeploymentSpec }>;
  /** Rules in the install namespace, per service account. */
  permissions: Permission[];
  /** Cluster-wide rules, per service account. */
  clusterPermissions: Permission[];
  crds: CrdLike[];
  /** Shipped beside the CSV, e.g. the webhook's Service. */
  manifests?: PlainManifest[];
  /** operatorframework.io/suggested-namespace: the namespace the manifests' names assume. */
  suggestedNamespace: string;
  channel?: string;
}

export const PACKAGE = "sandbox-operator";
export const DEFAULT_CHANNEL = "alpha";
/**
 * The CRDs' CEL rules call isQuantity(), which new CRDs may use from Kubernetes 1.29 (library added
 * in 1.28, allowed in new expressions one release later); 1.30 also serves ValidatingAdmissionPolicy
 * as admissionregistration.k8s.io/v1, which the admission component may use (DESIGN.md).
 */
export const MIN_KUBE_VERSION = "1.30.0";

/** Our icon: a shield (isolation) around a box (the container), drawn for this project. */
export const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><path d="M32 4 8 13v17c0 15 10 26 24 30 14-4 24-15 24-30V13z" fill="#1f4e79"/><path d="M32 10 14 17v13c0 11 7 20 18 24 11-4 18-13 18-24V17z" fill="#e8f1fa"/><path d="M20 26l12-6 12 6v13l-12 6-12-6z" fill="#2e86c1"/><path d="M20 26l12 6 12-6M32 32v13" stroke="#e8f1fa" stroke-width="2" fill="none"/></svg>`;

interface Descriptor {
  path: string;
  displayName: string;
  description: string;
  "x-descriptors"?: string[];
}

const UI = "urn:alm:descriptor:com.tectonic.ui";
const SPEC_UI: Record<string, string[]> = {
  nodeSelector: [`${UI}:selector:core:v1:Node`],
  installMethod: [`${UI}:select:Auto`, `${UI}:select:DaemonSet`, `${UI}:select:MachineConfig`],
  logLevel: [`${UI}:select:debug`, `${UI}:select:info`, `${UI}:select:warn`, `${UI}:select:error`],
  tolerations: [`${UI}:advanced`],
  overhead: [`${UI}:advanced`],
  allowedSandboxAnnotations: [`${UI}:advanced`],
  proceed: [`${UI}:booleanSwitch`],
};

/** Descriptions for spec fields whose schema has none (objects described by their members). */
const FALLBACK: Record<string, string> = {
  runtimes: "Sandbox backends that may be installed (allowed) and the order in which the general RuntimeClass picks one on each node (preferred).",
  rollout: "How many selected nodes are reconfigured at once, and whether a node is drained first.",
  uninstall: "What uninstall does while pods still use the operator's RuntimeClasses.",
  podPolicy: "Default policy for namespaces without the sandboxing.dev/policy label.",
  logLevel: "Log level of the controller and node agents.",
  action: "Apply: make the node match desired. Revert: remove what the agent wrote.",
  desired: "The node's desired configuration (handlers) and its content hash.",
  configGeneration: "The SandboxConfig generation this spec was rendered from.",
};

const human = (key: string) => key.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/^./, (c) => c.toUpperCase());

/** One spec descriptor per top-level spec field of the schema, so a new field cannot be forgotten. */
export function specDescriptors(schema: { properties: Record<string, { description?: string }> }): Descriptor[] {
  return Object.entries(schema.properties).map(([key, s]) => {
    const d: Descriptor = { path: key, displayName: human(key), description: s.description ?? FALLBACK[key] ?? "" };
    if (SPEC_UI[key]) d["x-descriptors"] = SPEC_UI[key];
    return d;
  });
}

const CONDITIONS: Descriptor = { path: "conditions", displayName: "Conditions", description: "Ready, Progressing and Degraded, with reasons.", "x-descriptors": ["urn:alm:descriptor:io.kubernetes.conditions"] };
const text = (path: string, displayName: string, description: string): Descriptor => ({ path, displayName, description, "x-descriptors": [`${UI}:text`] });

const OWNED: Record<string, { displayName: string; description: string; spec: Descriptor[]; status: Descriptor[]; resources: Array<{ kind: string; name: string; version: string }> }> = {
  SandboxConfig: {
    displayName: "Sandbox Configuration",
    description: "The one cluster-wide configuration (named cluster): which nodes get sandbox runtimes, which runtimes, RuntimeClasses, rollout and uninstall policy.",
    spec: specDescriptors(SandboxConfigSpec as unknown as { properties: Record<string, { description?: string }> }),
    status: [
      CONDITIONS,
      text("counts.selected", "Selected nodes", "Nodes matching spec.nodeSelector."),
      text("counts.ready", "Ready nodes", "Nodes that run the sandbox runtimes and carry the RuntimeClass labels."),
      text("counts.degraded", "Degraded nodes", "Nodes whose configuration failed; see status.nodes for the reason."),
      text("platform.kind", "Platform", "Kubernetes or OpenShift."),
      text("platform.infrastructure", "Infrastructure", "OpenShift Infrastructure platform type, e.g. BareMetal."),
      text("platform.installMethod", "Install method", "DaemonSet (node agent writes the files) or MachineConfig (the Machine Config Operator does)."),
      text("platform.machineConfigPool", "MachineConfigPool", "The pool that receives the MachineConfig on OpenShift."),
      { path: "runtimeClasses", displayName: "RuntimeClasses", description: "RuntimeClasses the operator published." },
    ],
    resources: [
      { kind: "SandboxNode", name: "", version: "v1alpha1" },
      { kind: "RuntimeClass", name: "", version: "v1" },
      { kind: "Node", name: "", version: "v1" },
      { kind: "MachineConfig", name: "", version: "v1" },
      { kind: "MachineConfigPool", name: "", version: "v1" },
      { kind: "DaemonSet", name: "", version: "v1" },
    ],
  },
  SandboxNode: {
    displayName: "Sandbox Node",
    description: "Per-node state, one per selected Node: the controller writes the desired configuration, the node's agent reports what it probed, applied and verified.",
    spec: specDescriptors(SandboxNodeSpec as unknown as { properties: Record<string, { description?: string }> }),
    status: [
      CONDITIONS,
      text("phase", "Phase", "Where the node's agent is: Probing, Waiting, Applying, Verifying, Applied, Failed, Reverting, Reverted."),
      text("appliedHash", "Applied hash", "The desired.hash the node runs, verified."),
      text("probe.cri.kind", "CRI runtime", "containerd or crio."),
    ],
    resources: [{ kind: "Node", name: "", version: "v1" }],
  },
};

/** An example per owned kind for the console's "Create" form (alm-examples). */
export function almExamples(): object[] {
  return [
    {
      apiVersion: "sandboxing.dev/v1alpha1",
      kind: "SandboxConfig",
      metadata: { name: "cluster" },
      spec: {
        nodeSelector: { matchLabels: { "node-role.kubernetes.io/worker": "" } },
        runtimes: { allowed: ["kata-qemu"] },
        runtimeClassName: "sandboxed",
        installMethod: "Auto",
        rollout: { maxUnavailable: 1 },
        uninstall: { whenPodsRun: "Wait" },
      },
    },
    // Written by the controller, one per selected Node; listed as an internal object so the console offers no "Create".
    { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name: "worker-0" }, spec: { action: "Apply", proceed: false } },
  ];
}

const DESCRIPTION = `Sandbox Operator lets a workload run in a sandbox with its own kernel by setting one field: \`runtimeClassName: sandboxed\`.

It installs Kata Containers on the nodes you select, wires it into CRI-O, publishes RuntimeClasses and labels a node only once it runs the configuration.

On OpenShift it configures nodes through the Machine Config Operator: a MachineConfigPool for the selected nodes and a MachineConfig that enables the RHCOS \`sandboxed-containers\` extension and writes the CRI-O and Kata configuration. Applying it drains and reboots each selected node once, \`maxUnavailable\` at a time.

Install it into the namespace \`sandbox-operator-system\` (the suggested one; the operator's names assume it). OLM runs the controller and the admission webhook and grants the node agent's service account its permissions; the node agent itself (a privileged DaemonSet, needed only for \`installMethod: DaemonSet\`: gVisor, the other Kata hypervisors, node verification) is one more \`oc apply\`, see the install guide linked below.

Create one SandboxConfig named \`cluster\` to start; delete it to uninstall (uninstall waits while sandboxed pods run).`;

export function renderCsv(inputs: BundleInputs): object {
  const accounts = new Set([...inputs.permissions, ...inputs.clusterPermissions].map((p) => p.serviceAccountName));
  for (const d of inputs.deployments) {
    const sa = d.spec.template.spec.serviceAccountName;
    if (!accounts.has(sa)) throw new Error(`renderCsv: Deployment ${d.name} runs as service account ${sa}, which has no permissions entry; add its rules to the bundle inputs (src/manifests/bundle-inputs.ts)`);
  }
  const owned = inputs.crds.map((crd) => {
    const o = OWNED[crd.spec.names.kind];
    if (!o) throw new Error(`renderCsv: no CSV description for CRD ${crd.metadata.name}; add ${crd.spec.names.kind} to OWNED in src/openshift/render-bundle.ts`);
    return {
      name: crd.metadata.name,
      version: crd.spec.versions[0]!.name,
      kind: crd.spec.names.kind,
      displayName: o.displayName,
      description: o.description,
      resources: o.resources,
      specDescriptors: o.spec,
      statusDescriptors: o.status,
    };
  });
  return {
    apiVersion: "operators.coreos.com/v1alpha1",
    kind: "ClusterServiceVersion",
    metadata: {
      name: `${PACKAGE}.v${inputs.version}`,
      namespace: "placeholder",
      annotations: {
        "alm-examples": JSON.stringify(almExamples(), null, 2),
        capabilities: "Basic Install",
        categories: "Security",
        containerImage: inputs.image,
        description: "Runs workloads in sandboxes with their own kernel (Kata Containers) behind one RuntimeClass.",
        repository: "https://github.com/sandbox-operator/sandbox-operator",
        support: "sandbox-operator project",
        "operatorframework.io/suggested-namespace": inputs.suggestedNamespace,
        "operators.operatorframework.io/internal-objects": JSON.stringify(["sandboxnodes.sandboxing.dev"]),
        "operatorframework.io/initialization-resource": JSON.stringify(almExamples()[0]),
        "features.operators.openshift.io/disconnected": "false",
        "features.operators.openshift.io/fips-compliant": "false",
        "features.operators.openshift.io/proxy-aware": "false",
        "features.operators.openshift.io/tls-profiles": "false",
        "features.operators.openshift.io/token-auth-aws": "false",
        "features.operators.openshift.io/token-auth-azure": "false",
        "features.operators.openshift.io/token-auth-gcp": "false",
      },
      labels: { "operatorframework.io/arch.amd64": "supported", "operatorframework.io/os.linux": "supported" },
    },
    spec: {
      displayName: "Sandbox Operator",
      description: DESCRIPTION,
      version: inputs.version,
      minKubeVersion: MIN_KUBE_VERSION,
      maturity: "alpha",
      keywords: ["sandbox", "kata", "kata-containers", "runtimeclass", "isolation", "security"],
      provider: { name: "sandbox-operator project", url: "https://github.com/sandbox-operator/sandbox-operator" },
      maintainers: [{ name: "sandbox-operator maintainers", email: "maintainers@sandboxing.dev" }],
      links: [
        { name: "Source", url: "https://github.com/sandbox-operator/sandbox-operator" },
        { name: "Install on OpenShift", url: "https://github.com/sandbox-operator/sandbox-operator/blob/main/docs/install-openshift.md" },
      ],
      icon: [{ base64data: Buffer.from(ICON_SVG, "utf8").toString("base64"), mediatype: "image/svg+xml" }],
      // The operator's objects are cluster-scoped (one SandboxConfig per cluster), so only AllNamespaces makes sense.
      installModes: [
        { type: "OwnNamespace", supported: false },
        { type: "SingleNamespace", supported: false },
        { type: "MultiNamespace", supported: false },
        { type: "AllNamespaces", supported: true },
      ],
      customresourcedefinitions: { owned },
      install: {
        strategy: "deployment",
        spec: {
          deployments: inputs.deployments.map((d) => ({ name: d.name, label: d.spec.selector.matchLabels, spec: d.spec })),
          permissions: inputs.permissions,
          clusterPermissions: inputs.clusterPermissions,
        },
      },
      relatedImages: [{ name: "sandbox-operator", image: inputs.image }, ...(inputs.gvisorPayload ? [{ name: "sandbox-operator-gvisor", image: inputs.gvisorPayload }] : [])],
    },
  };
}

export function bundleAnnotations(channel = DEFAULT_CHANNEL): object {
  return {
    annotations: {
      "operators.operatorframework.io.bundle.mediatype.v1": "registry+v1",
      "operators.operatorframework.io.bundle.manifests.v1": "manifests/",
      "operators.operatorframework.io.bundle.metadata.v1": "metadata/",
      "operators.operatorframework.io.bundle.package.v1": PACKAGE,
      "operators.operatorframework.io.bundle.channels.v1": channel,
      "operators.operatorframework.io.bundle.channel.default.v1": channel,
    },
  };
}

/** A plain manifest as OLM wants it: no namespace (OLM puts it in the install namespace); kinds OLM cannot create are refused. */
export function plainManifest(m: PlainManifest): [string, object] {
  if (!(OLM_PLAIN_KINDS as readonly string[]).includes(m.kind)) {
    throw new Error(`renderBundle: ${m.kind} ${m.metadata.name} cannot be a bundle manifest (OLM creates only ${OLM_PLAIN_KINDS.join(", ")}); create it from the operator or document it as an install step`);
  }
  const { namespace: _ns, ...metadata } = m.metadata;
  const [group, version] = m.apiVersion.includes("/") ? m.apiVersion.split("/") : ["", m.apiVersion];
  const file = [m.metadata.name, group ? group.split(".")[0] : "", version, m.kind.toLowerCase()].filter(Boolean).join("_");
  return [`manifests/${file}.yaml`, { ...m, metadata }];
}

/** Every bundle file: [path under bundle/, object]. */
export function renderBundle(inputs: BundleInputs): Array<[string, object]> {
  return [
    [`manifests/${PACKAGE}.clusterserviceversion.yaml`, renderCsv(inputs)],
    ...inputs.crds.map((crd): [string, object] => [`manifests/${crd.spec.group}_${crd.spec.names.plural}.yaml`, crd]),
    ...(inputs.manifests ?? []).map(plainManifest),
    ["metadata/annotations.yaml", bundleAnnotations(inputs.channel)],
  ];
}
