// SandboxNode: the contract between the controller (writes spec) and one node's agent (writes
// status). docs/agent-contract.md explains every field; keep the two in step.
import { Type, type Static } from "@sinclair/typebox";
import { BACKENDS, Conditions, Payloads, StringEnum, VerificationImage } from "./common.js";
import { SandboxConfigSpec } from "./sandboxconfig.js";

export const SANDBOXNODE_KIND = "SandboxNode";
export const SANDBOXNODE_PLURAL = "sandboxnodes";
/** An admin sets this to "true" on a leaving node's SandboxNode to let it go unreverted (sandboxctl uninstall --abandon-node). */
export const ABANDON_ANNOTATION = "sandboxing.dev/abandon";
/** Set by the controller when it tells the node to revert: the start of spec.uninstall.nodeTimeoutSeconds. */
export const REVERT_SINCE_ANNOTATION = "sandboxing.dev/revert-requested";
/** Node summary reasons of a revert that outlived its timeout (it waits for its agent or an abandon). */
export const STUCK_REASONS = ["AgentNotResponding", "RevertFailed", "RevertTimedOut"] as const;

const Backend = StringEnum(BACKENDS);

export const KataGuest = Type.Object({
  vcpus: Type.Optional(Type.Integer({ minimum: 1 })),
  memoryMiB: Type.Optional(Type.Integer({ minimum: 1 })),
  kernelParams: Type.Optional(Type.Array(Type.String())),
  vfio: Type.Optional(
    Type.Object({
      plug: StringEnum(["cold-plug", "hot-plug"] as const),
      port: StringEnum(["root-port", "switch-port", "bridge-port"] as const),
      rootPorts: Type.Optional(Type.Integer({ minimum: 1 })),
    }),
  ),
});
export type KataGuest = Static<typeof KataGuest>;

export const DesiredHandler = Type.Object({
  name: Type.String({ description: "CRI runtime handler name (equals the RuntimeClass handler)." }),
  backend: Backend,
  general: Type.Optional(Type.Boolean({ description: "True for the general handler (default name 'sandboxed')." })),
  kata: Type.Optional(KataGuest),
});
export type DesiredHandler = Static<typeof DesiredHandler>;

export const SandboxNodeSpec = Type.Object({
  action: StringEnum(["Apply", "Revert"] as const, {
    description: "Apply: make the node match desired. Revert: remove everything the agent wrote.",
  }),
  proceed: Type.Boolean({ description: "Go/no-go from the rollout gate: the agent changes the node only while true." }),
  configGeneration: Type.Optional(Type.Integer({ description: "SandboxConfig generation this spec was rendered from." })),
  fromConfig: Type.Optional(
    Type.Object(
      {
        runtimes: SandboxConfigSpec.properties.runtimes,
        runtimeClassName: Type.String({ description: "Name of the general RuntimeClass (and its CRI handler)." }),
        variants: SandboxConfigSpec.properties.variants,
        allowedSandboxAnnotations: SandboxConfigSpec.properties.allowedSandboxAnnotations,
        logLevel: StringEnum(["debug", "info", "warn", "error"] as const),
        verification: Type.Optional(VerificationImage),
        payloads: Type.Optional(Payloads),
      },
      {
        description:
          "The SandboxConfig fields desired is computed from. Without desired, an agent that has applied nothing yet computes desired from these and its own probe (desiredNode) and applies it when proceed is true; every later change comes as desired.",
      },
    ),
  ),
  desired: Type.Optional(
    Type.Object({
      hash: Type.String({ description: "Content hash of desired; the agent reports it back as status.appliedHash." }),
      handlers: Type.Array(DesiredHandler, { maxItems: 32 }),
      allowedAnnotations: Type.Optional(Type.Array(Type.String())),
      logLevel: Type.Optional(Type.String()),
      verification: Type.Optional(VerificationImage),
      payloads: Type.Optional(Payloads),
    }),
  ),
});
export type SandboxNodeSpec = Static<typeof SandboxNodeSpec>;

export const BackendProbe = Type.Object({
  backend: Backend,
  installed: Type.Boolean({ description: "Binaries and configuration for this backend are present on the node." }),
  usable: Type.Boolean({ description: "The node can run sandboxes with this backend (e.g. KVM guests run)." }),
  message: Type.Optional(Type.String()),
});
export type BackendProbe = Static<typeof BackendProbe>;

export const Probe = Type.Object({
  arch: Type.String(),
  kernel: Type.Optional(Type.String()),
  cri: Type.Object({
    kind: StringEnum(["containerd", "crio", "unknown"] as const),
    version: Type.Optional(Type.String()),
    configPath: Type.Optional(Type.String({ description: "The runtime config file the agent edits (host path)." })),
    socket: Type.Optional(Type.String({ description: "The CRI socket that answered, as the agent sees it." })),
    source: Type.Optional(Type.String({ description: "How config and socket were chosen: the runtime process and its --config/--address, the kubelet's endpoint, a flag, or defaults." })),
  }),
  kvm: Type.Object({
    device: Type.Boolean({ description: "/dev/kvm exists and opens." }),
    guestsRun: Type.Boolean({ description: "A guest actually ran, not just the device opening." }),
    nested: Type.Optional(Type.Boolean()),
    module: Type.Optional(StringEnum(["kvm_intel", "kvm_amd", "kvm_pvm"] as const, { description: "The kernel module behind /dev/kvm; kvm_pvm runs only PVM-enabled guest kernels (no Kata VM)." })),
    message: Type.Optional(Type.String()),
  }),
  vhostVsock: Type.Boolean(),
  backends: Type.Array(BackendProbe, { maxItems: 8 }),
});
export type Probe = Static<typeof Probe>;

export const AGENT_PHASES = ["Probing", "Waiting", "Applying", "Verifying", "Applied", "RollingBack", "Failed", "Reverting", "Reverted"] as const;
export type AgentPhase = (typeof AGENT_PHASES)[number];

export const HandlerStatus = Type.Object({
  name: Type.String(),
  backend: Backend,
  verified: Type.Boolean(),
  kernel: Type.Optional(Type.String({ description: "Kernel the verification container saw (uname -r / dmesg first line)." })),
  message: Type.Optional(Type.String()),
});
export type HandlerStatus = Static<typeof HandlerStatus>;

export const SandboxNodeStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  agentVersion: Type.Optional(Type.String()),
  heartbeatTime: Type.Optional(Type.String({ format: "date-time" })),
  probe: Type.Optional(Probe),
  phase: Type.Optional(StringEnum(AGENT_PHASES)),
  appliedHash: Type.Optional(Type.String({ description: "desired.hash the node now runs, verified; empty once reverted." })),
  failedHash: Type.Optional(Type.String({ description: "desired.hash whose apply failed and was rolled back." })),
  handlers: Type.Optional(Type.Array(HandlerStatus, { maxItems: 32 })),
  conditions: Type.Optional(Conditions),
});
export type SandboxNodeStatus = Static<typeof SandboxNodeStatus>;

export const SandboxNode = Type.Object({
  apiVersion: Type.String(),
  kind: Type.String(),
  metadata: Type.Object({}, { additionalProperties: true }),
  spec: SandboxNodeSpec,
  status: Type.Optional(SandboxNodeStatus),
});

export interface SandboxNode {
  apiVersion: string;
  kind: string;
  metadata: { name: string; generation?: number; resourceVersion?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>; [k: string]: unknown };
  spec: SandboxNodeSpec;
  status?: SandboxNodeStatus;
}
