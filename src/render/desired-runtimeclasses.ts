// The RuntimeClasses the operator publishes on every install path (DaemonSet and MachineConfig):
// the general one, one per backend and per variant, each with pod overhead and a nodeSelector on the label only verified nodes get.
import { BACKEND_CLASS, DEFAULT_RUNTIMECLASS, type Backend, type ResourceOverhead, type SandboxConfigSpec, type Toleration, type Variant } from "../api/index.js";
import { DEFAULT_MEMORY_MIB, DEFAULT_VCPUS } from "./node/kata-config.js";
import { quantityToMiB, quantityValue } from "./quantity.js";

export const RUNTIME_LABEL_PREFIX = "sandboxing.dev/runtime.";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "sandbox-operator";
export const CONFIG_LABEL = "sandboxing.dev/config";
/** Marks the RuntimeClasses only the node agent's verification Pods may use. */
export const PURPOSE_LABEL = "sandboxing.dev/purpose";
export const VERIFY_CLASS_PREFIX = "sandboxing-verify-";

/**
 * The verification RuntimeClass of a handler: the same handler without the scheduling gate, so the
 * agent can prove a node before it earns the label; a ValidatingAdmissionPolicy keeps every Pod but
 * the agent's off it (docs/adr/0004-verify-with-pods.md).
 */
export const verifyClassName = (handler: string) => `${VERIFY_CLASS_PREFIX}${handler}`;

/** The Node label a verified handler earns; RuntimeClass `name` selects it. */
export const runtimeLabel = (className: string) => `${RUNTIME_LABEL_PREFIX}${className}`;

/**
 * Default pod overhead per backend (docs/controller.md says where each number comes from):
 * Kata QEMU 320Mi/250m and Cloud Hypervisor / Firecracker 130Mi/250m follow upstream
 * kata-deploy's RuntimeClasses; gVisor's is measured on this project's test machine.
 */
export const DEFAULT_OVERHEAD: Record<Backend, Required<ResourceOverhead>> = {
  "kata-qemu": { memory: "320Mi", cpu: "250m" },
  "kata-clh": { memory: "130Mi", cpu: "250m" },
  "kata-fc": { memory: "130Mi", cpu: "250m" },
  gvisor: { memory: "64Mi", cpu: "100m" },
};

export interface RuntimeClassObject {
  apiVersion: "node.k8s.io/v1";
  kind: "RuntimeClass";
  metadata: { name: string; labels: Record<string, string> };
  handler: string;
  overhead: { podFixed: { memory: string; cpu: string } };
  /** Absent on verification classes only. */
  scheduling?: { nodeSelector: Record<string, string>; tolerations?: Toleration[] };
}

function overheadFor(spec: SandboxConfigSpec, backend: Backend): Required<ResourceOverhead> {
  return { ...DEFAULT_OVERHEAD[backend], ...(spec.overhead?.[backend] ?? {}) };
}

/** The larger of two quantities (the CRD admits only valid ones); any notation the apiserver accepts compares by value. */
const larger = (a: string, b: string) => (quantityValue(b) > quantityValue(a) ? b : a);

/** Guest RAM the guest kernel's memmap takes: one 64-byte struct page per 4 KiB page, written at boot. */
const MEMMAP_FRACTION = 64 / 4096;
/** Per extra vCPU: the hypervisor's vCPU thread and KVM state, and the guest's per-CPU areas (an estimate). */
const PER_VCPU_MIB = 2;

/**
 * A Kata variant's overhead: its backend's (sized for Kata's default 1 vCPU / 2048 MiB VM) plus what a
 * larger VM costs the host outside the pod's containers (docs/controller.md gives the reasoning): the
 * memmap of the extra guest RAM and the extra vCPUs; with VFIO all of the VM's boot memory, since
 * VFIO pins every guest page for DMA. Never below the backend's own figure.
 */
export function variantOverhead(base: Required<ResourceOverhead>, v: Variant): Required<ResourceOverhead> {
  if (v.backend === "gvisor") return base;
  const memMiB = v.memory !== undefined ? quantityToMiB(v.memory) : DEFAULT_MEMORY_MIB;
  const extra = Math.ceil(Math.max(0, memMiB - DEFAULT_MEMORY_MIB) * MEMMAP_FRACTION) + PER_VCPU_MIB * Math.max(0, (v.vcpus ?? DEFAULT_VCPUS) - DEFAULT_VCPUS) + (v.vfio ? memMiB : 0);
  if (extra === 0) return base;
  return { memory: `${quantityToMiB(base.memory) + extra}Mi`, cpu: base.cpu };
}

function runtimeClass(spec: SandboxConfigSpec, name: string, overhead: Required<ResourceOverhead>, extraLabels: Record<string, string> = {}, nodeSelector: Record<string, string> = {}): RuntimeClassObject {
  return {
    apiVersion: "node.k8s.io/v1",
    kind: "RuntimeClass",
    metadata: { name, labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [CONFIG_LABEL]: "cluster", ...extraLabels } },
    handler: name,
    overhead: { podFixed: { memory: overhead.memory, cpu: overhead.cpu } },
    scheduling: { nodeSelector: { ...nodeSelector, [runtimeLabel(name)]: "true" }, ...(spec.tolerations?.length ? { tolerations: spec.tolerations } : {}) },
  };
}

export interface RuntimeClassOptions {
  /** Only these backends (an install path that provides fewer, e.g. MachineConfig: kata-qemu); default every allowed one. */
  backends?: readonly Backend[];
  /** Extra labels, e.g. the install method that published the class. */
  labels?: Record<string, string>;
}

/**
 * Every RuntimeClass for a config. The general class may land on any allowed backend, so it
 * charges the largest overhead among them: a pod is never under-reserved on any node.
 */
export function desiredRuntimeClasses(spec: SandboxConfigSpec, opts: RuntimeClassOptions = {}): RuntimeClassObject[] {
  const allowed = [...new Set(spec.runtimes.allowed)].filter((b) => !opts.backends || opts.backends.includes(b));
  if (allowed.length === 0) return [];
  const general = allowed.map((b) => overheadFor(spec, b)).reduce((a, b) => ({ memory: larger(a.memory, b.memory), cpu: larger(a.cpu, b.cpu) }));
  const out = [runtimeClass(spec, spec.runtimeClassName ?? DEFAULT_RUNTIMECLASS, general, opts.labels)];
  for (const b of allowed) out.push(runtimeClass(spec, BACKEND_CLASS[b], overheadFor(spec, b), opts.labels));
  for (const v of spec.variants ?? []) {
    if (!allowed.includes(v.backend)) continue;
    // A passthrough variant runs only where the device is: the admin's label of those nodes.
    out.push(runtimeClass(spec, v.name, { ...variantOverhead(overheadFor(spec, v.backend), v), ...(v.overhead ?? {}) }, opts.labels, v.vfio?.nodeSelector));
  }
  return out;
}

/** One verification class per published class (DaemonSet path: the agent verifies with Pods). */
export function verifyRuntimeClasses(classes: readonly RuntimeClassObject[]): RuntimeClassObject[] {
  return classes.map((rc) => ({
    apiVersion: rc.apiVersion,
    kind: rc.kind,
    metadata: { name: verifyClassName(rc.handler), labels: { ...rc.metadata.labels, [PURPOSE_LABEL]: "verify" } },
    handler: rc.handler,
    overhead: rc.overhead,
  }));
}

/** Names of every RuntimeClass a config publishes (pods using one of them block an uninstall). */
export const runtimeClassNames = (spec: SandboxConfigSpec): string[] => desiredRuntimeClasses(spec).map((rc) => rc.metadata.name);

export interface ExistingRuntimeClass {
  metadata: { name: string; labels?: Record<string, string> };
}

export const isOurs = (rc: ExistingRuntimeClass) => rc.metadata.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;

/** Desired class names that exist but belong to someone else: never overwritten, reported instead. */
export function runtimeClassConflicts(desired: string[], existing: (name: string) => ExistingRuntimeClass | undefined): string[] {
  return desired.filter((name) => {
    const rc = existing(name);
    return rc !== undefined && !isOurs(rc);
  });
}
