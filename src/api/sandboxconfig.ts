// SandboxConfig: what the admin wants (which nodes, which runtimes, classes, rollout, uninstall,
// pod policy). One schema is the source of the TS type, the CRD and the controller's validation.
import { Type, type SchemaOptions, type Static } from "@sinclair/typebox";
import {
  VerificationImage,
  Payloads,
  BACKENDS,
  Conditions,
  DnsLabel,
  BoundedQuantity,
  LabelMap,
  LabelSelector,
  ResourceOverhead,
  StringEnum,
  Toleration,
  cel,
} from "./common.js";

export const SANDBOXCONFIG_KIND = "SandboxConfig";
export const SANDBOXCONFIG_PLURAL = "sandboxconfigs";
/** The one SandboxConfig a cluster has (ADR 0001): cluster-wide settings are singletons, like OpenShift's config objects. */
export const SANDBOXCONFIG_NAME = "cluster";
export const DEFAULT_RUNTIMECLASS = "sandboxed";

export const BackendSchema = StringEnum(BACKENDS, { description: "A sandbox backend: kata-qemu, kata-clh, kata-fc or gvisor." });

/** RuntimeClass names the operator gives each backend's own class. */
export const BACKEND_CLASS: Record<(typeof BACKENDS)[number], string> = {
  "kata-qemu": "kata",
  "kata-clh": "kata-clh",
  "kata-fc": "kata-fc",
  gvisor: "gvisor",
};

/** Kata's PCIe ports a VFIO device can be plugged into (cold_plug_vfio / hot_plug_vfio values). */
export const VFIO_PORTS = ["root-port", "switch-port", "bridge-port"] as const;

export const VfioPassthrough = Type.Object(
  {
    plug: StringEnum(["cold-plug", "hot-plug"] as const, {
      description: "cold-plug: the device is in the VM from boot (Kata cold_plug_vfio, devices from the kubelet's pod-resources API); hot-plug: added after boot (hot_plug_vfio).",
    }),
    port: Type.Optional(StringEnum(VFIO_PORTS, { default: "root-port", description: "The PCIe port Kata plugs the device into; Cloud Hypervisor supports only root-port." })),
    rootPorts: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, description: "Kata pcie_root_port: root ports QEMU creates up front, one per device to hot-plug (needed for large-BAR devices such as GPUs)." })),
    nodeSelector: LabelMap({
      minProperties: 1,
      maxProperties: 16,
      description: "Labels only the nodes with the device carry (e.g. feature.node.kubernetes.io/pci-10de.present: \"true\"); the variant's RuntimeClass schedules onto them only.",
    }),
  },
  { description: "Pass a host PCI device (bound to vfio-pci) through to the guest VM: exclusive hardware by configuration (Kata on QEMU or Cloud Hypervisor)." },
);
export type VfioPassthrough = Static<typeof VfioPassthrough>;

/** Longest class name whose node label `sandboxing.dev/runtime.<name>` is a valid label key (63-character name part). */
export const MAX_CLASS_NAME = 63 - "runtime.".length;

/** A RuntimeClass / CRI handler name we publish: a DNS label short enough for its node label. */
const ClassName = (options: SchemaOptions) =>
  DnsLabel({
    ...options,
    ...cel({
      rule: `size(self) <= ${MAX_CLASS_NAME}`,
      message: `must be at most ${MAX_CLASS_NAME} characters: the node label sandboxing.dev/runtime.<name> allows no more`,
      messageExpression: `'"' + self + '" is longer than ${MAX_CLASS_NAME} characters, the most that fit in the node label sandboxing.dev/runtime.<name>'`,
    }),
  });

const ANNOTATION_KEY = "^(io\\.katacontainers\\.|dev\\.gvisor\\.)[A-Za-z0-9._/-]+$";

export const Variant = Type.Object(
  {
    name: ClassName({ description: "RuntimeClass (and CRI handler) name of this variant; at most 55 characters (it is part of the node label sandboxing.dev/runtime.<name>)." }),
    backend: BackendSchema,
    vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: "Guest vCPUs (Kata only)." })),
    memory: Type.Optional(BoundedQuantity("256Mi", "4Ti", "2Gi", { description: "Guest memory, e.g. 2Gi (Kata only; Kata's minimum is 256Mi)." })),
    kernelParams: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256, pattern: "^[!-~]+$" }), {
        maxItems: 32,
        description: "Extra guest kernel command-line parameters, one per item (Kata only): printable ASCII without spaces (no NUL, tabs or non-ASCII spaces).",
      }),
    ),
    vfio: Type.Optional(VfioPassthrough),
    overhead: Type.Optional(ResourceOverhead),
  },
  cel(
    {
      rule: "self.backend != 'gvisor' || (!has(self.vcpus) && !has(self.memory) && !has(self.kernelParams))",
      message: "vcpus, memory and kernelParams configure a Kata guest VM; remove them or choose a kata-* backend",
    },
    {
      rule: "!has(self.vfio) || self.backend in ['kata-qemu', 'kata-clh']",
      message: "vfio passes a PCI device to a Kata VM over PCIe, which only kata-qemu and kata-clh have (Firecracker has no PCIe, gVisor no VM); choose one of them or remove vfio",
      fieldPath: ".vfio",
    },
    {
      rule: "!has(self.vfio) || self.backend != 'kata-clh' || !has(self.vfio.port) || self.vfio.port == 'root-port'",
      message: "Cloud Hypervisor plugs VFIO devices into a root-port only; set vfio.port to root-port or use kata-qemu",
      fieldPath: ".vfio.port",
    },
    {
      rule: "!has(self.vfio) || !has(self.vfio.rootPorts) || self.vfio.plug == 'hot-plug'",
      message: "vfio.rootPorts (Kata pcie_root_port) is for hot-plug; cold-plugged devices get their ports when the VM is created; remove it or set vfio.plug to hot-plug",
      fieldPath: ".vfio.rootPorts",
    },
  ),
);
export type Variant = Static<typeof Variant>;

/** Host access a sandbox does not contain: the pod reaches the node's files, network, processes or IPC. */
export const HOST_ACCESS_KINDS = ["hostPath", "hostNetwork", "hostPID", "hostIPC"] as const;
export type HostAccessKind = (typeof HOST_ACCESS_KINDS)[number];

export const HostAccessGrant = Type.Object({
  namespace: DnsLabel({ description: "The namespace whose pods get this host access." }),
  kinds: Type.Array(StringEnum(HOST_ACCESS_KINDS), { minItems: 1, maxItems: 4, "x-kubernetes-list-type": "set", description: "hostPath, hostNetwork, hostPID and/or hostIPC." }),
});
export type HostAccessGrant = Static<typeof HostAccessGrant>;

const overheadPerBackend = Type.Object(
  {
    "kata-qemu": Type.Optional(ResourceOverhead),
    "kata-clh": Type.Optional(ResourceOverhead),
    "kata-fc": Type.Optional(ResourceOverhead),
    gvisor: Type.Optional(ResourceOverhead),
  },
  { description: "Overrides of the documented per-backend pod overhead." },
);

export const SandboxConfigSpec = Type.Object(
  {
    // Optional with a default so that a server-side apply of `nodeSelector: {}` over a selector
    // with matchLabels (which the apiserver stores as null) still means "every node".
    nodeSelector: Type.Optional(
      Type.Object(LabelSelector.properties, {
        default: {},
        description: "Nodes that get sandbox runtimes. {} (the default) selects every node.",
      }),
    ),
    tolerations: Type.Optional(Type.Array(Toleration, { maxItems: 32, description: "Tolerations for the agent and copied into the RuntimeClasses' scheduling." })),
    runtimes: Type.Object(
      {
        allowed: Type.Array(BackendSchema, { minItems: 1, maxItems: 4, "x-kubernetes-list-type": "set", description: "Backends that may be installed." }),
        preferred: Type.Optional(
          Type.Array(BackendSchema, { maxItems: 4, "x-kubernetes-list-type": "set", description: "Order in which the general RuntimeClass picks a backend on each node; defaults to kata-qemu, kata-clh, kata-fc, gvisor." }),
        ),
      },
      cel({
        rule: "!has(self.preferred) || self.preferred.all(r, r in self.allowed)",
        message: "every runtime in runtimes.preferred must also be listed in runtimes.allowed",
        fieldPath: ".preferred",
      }),
    ),
    runtimeClassName: Type.Optional(
      ClassName({ default: DEFAULT_RUNTIMECLASS, description: "Name of the general RuntimeClass (and its CRI handler); at most 55 characters (it is part of the node label sandboxing.dev/runtime.<name>)." }),
    ),
    variants: Type.Optional(
      Type.Array(Variant, {
        maxItems: 16,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description: "Extra RuntimeClasses with their own guest sizing or kernel parameters.",
      }),
    ),
    overhead: Type.Optional(overheadPerBackend),
    rollout: Type.Optional(
      Type.Object(
        {
          maxUnavailable: Type.Optional(
            Type.Unsafe<number | string>({
              "x-kubernetes-int-or-string": true,
              anyOf: [{ type: "integer" }, { type: "string" }],
              default: 1,
              description: "How many selected nodes may be reconfigured at once: a count (>= 1) or a percentage such as 25%.",
              ...cel({
                rule: "type(self) == int ? self >= 1 : self.matches('^([1-9][0-9]?|100)%$')",
                message: "must be an integer >= 1 or a percentage from 1% to 100%, such as 1 or 25%",
                messageExpression: "(type(self) == int ? string(self) : '\"' + string(self) + '\"') + ' is not an integer >= 1 or a percentage from 1% to 100%; use e.g. 1 or 25%'",
              }),
            }),
          ),
          drain: Type.Optional(Type.Boolean({ default: false, description: "Drain a node before its runtime restarts: cordon it, evict its pods through the Eviction API (PodDisruptionBudgets apply), and uncordon it once verified (docs/controller.md#drain)." })),
          drainTimeoutSeconds: Type.Optional(
            Type.Integer({ minimum: 1, maximum: 86400, default: 600, description: "How long a drain may wait for evictions before the node is reported DrainBlocked (it stays cordoned and keeps its rollout slot, like kubectl drain --timeout)." }),
          ),
        },
        { default: {} },
      ),
    ),
    uninstall: Type.Optional(
      Type.Object(
        {
          whenPodsRun: Type.Optional(
            StringEnum(["Wait", "Proceed"] as const, {
              default: "Wait",
              description: "Wait: uninstall waits while pods use our RuntimeClasses on a node. Proceed: revert anyway.",
            }),
          ),
          nodeTimeoutSeconds: Type.Optional(
            Type.Integer({
              minimum: 1,
              maximum: 86400,
              default: 600,
              description: "How long one node's revert may take before it stops holding the uninstall: the node is reported (AgentNotResponding, RevertFailed, RevertTimedOut), its rollout slot goes to the next node, and it waits for its agent or for an admin to abandon it (sandboxctl uninstall --abandon-node).",
            }),
          ),
        },
        { default: {} },
      ),
    ),
    podPolicy: Type.Optional(
      Type.Object(
        {
          defaultMode: Type.Optional(
            StringEnum(["enforce", "audit", "off"] as const, {
              default: "off",
              description: "Policy for namespaces without the sandboxing.dev/policy label.",
            }),
          ),
          allowedHostAccess: Type.Optional(
            Type.Array(HostAccessGrant, {
              maxItems: 256,
              "x-kubernetes-list-type": "map",
              "x-kubernetes-list-map-keys": ["namespace"],
              description: "Host access (hostPath, hostNetwork, hostPID, hostIPC) granted per namespace: a sandbox does not contain it, so enforce mode refuses it in every namespace not listed here.",
            }),
          ),
          exemptions: Type.Optional(
            Type.Object(
              {
                daemonSets: Type.Optional(
                  Type.Boolean({ default: true, description: "Leave pods the DaemonSet controller creates alone (never sandboxed, never refused): node agents such as CNI and CSI plugins need the host." }),
                ),
                namespaces: Type.Optional(
                  Type.Array(DnsLabel(), { maxItems: 256, "x-kubernetes-list-type": "set", description: "Namespaces the pod policy never touches, besides kube-system and the operator's own." }),
                ),
              },
              { description: "Pods the pod policy leaves alone." },
            ),
          ),
        },
        { default: {} },
      ),
    ),
    allowedSandboxAnnotations: Type.Optional(
      Type.Array(Type.String({ pattern: ANNOTATION_KEY, maxLength: 253 }), {
        maxItems: 64,
        "x-kubernetes-list-type": "set",
        description: "Pod annotation keys (io.katacontainers.*, dev.gvisor.*) pods may use to reconfigure their sandbox.",
      }),
    ),
    logLevel: Type.Optional(StringEnum(["debug", "info", "warn", "error"] as const, { default: "info" })),
    verification: Type.Optional(VerificationImage),
    payloads: Type.Optional(Payloads),
    installMethod: Type.Optional(
      StringEnum(["Auto", "DaemonSet", "MachineConfig"] as const, {
        default: "Auto",
        description: "Auto: MachineConfig on OpenShift, DaemonSet elsewhere.",
      }),
    ),
  },
  cel(
    {
      rule: "!has(self.variants) || self.variants.all(v, v.backend in self.runtimes.allowed)",
      message: "every variant's backend must be listed in runtimes.allowed",
      fieldPath: ".variants",
    },
    {
      rule: "!has(self.variants) || self.variants.all(v, !(v.name in ['kata', 'kata-clh', 'kata-fc', 'gvisor']) && v.name != (has(self.runtimeClassName) ? self.runtimeClassName : 'sandboxed'))",
      message: "a variant name must differ from the general RuntimeClass name and from the backend classes kata, kata-clh, kata-fc, gvisor",
      fieldPath: ".variants",
    },
  ),
);
export type SandboxConfigSpec = Static<typeof SandboxConfigSpec>;

export const NODE_STATES = ["Pending", "Progressing", "Ready", "Degraded", "Uninstalling"] as const;
export type NodeState = (typeof NODE_STATES)[number];

export const NodeSummary = Type.Object({
  name: Type.String(),
  state: StringEnum(NODE_STATES),
  backend: Type.Optional(Type.String({ description: "Backend behind the general RuntimeClass on this node." })),
  reason: Type.Optional(Type.String()),
  message: Type.Optional(Type.String()),
});
export type NodeSummary = Static<typeof NodeSummary>;

export const SandboxConfigStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  counts: Type.Optional(
    Type.Object({
      selected: Type.Integer(),
      ready: Type.Integer(),
      progressing: Type.Integer(),
      degraded: Type.Integer(),
      uninstalling: Type.Integer(),
    }),
  ),
  nodes: Type.Optional(Type.Array(NodeSummary, { maxItems: 10000 })),
  runtimeClasses: Type.Optional(Type.Array(Type.String())),
  platform: Type.Optional(
    Type.Object({
      kind: StringEnum(["Kubernetes", "OpenShift"] as const),
      infrastructure: Type.Optional(Type.String({ description: "OpenShift Infrastructure platform type, e.g. BareMetal." })),
      installMethod: StringEnum(["DaemonSet", "MachineConfig"] as const),
      machineConfigPool: Type.Optional(Type.String()),
      message: Type.Optional(Type.String()),
    }),
  ),
  conditions: Type.Optional(Conditions),
});
export type SandboxConfigStatus = Static<typeof SandboxConfigStatus>;

export const SandboxConfig = Type.Object(
  {
    apiVersion: Type.String(),
    kind: Type.String(),
    metadata: Type.Object({}, { additionalProperties: true }),
    spec: SandboxConfigSpec,
    status: Type.Optional(SandboxConfigStatus),
  },
  cel({
    rule: "self.metadata.name == 'cluster'",
    message: "there is one SandboxConfig per cluster and it must be named 'cluster'",
  }),
);

export interface SandboxConfig {
  apiVersion: string;
  kind: string;
  metadata: { name: string; generation?: number; resourceVersion?: string; uid?: string; deletionTimestamp?: string; finalizers?: string[]; [k: string]: unknown };
  spec: SandboxConfigSpec;
  status?: SandboxConfigStatus;
}
