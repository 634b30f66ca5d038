// What one node should run, computed from the SandboxConfig and the node's probe: the CRI
// handlers (general, per backend, per variant) and a content hash the agent reports back.
// Shared: the controller computes it, and so does the agent from SandboxNode spec.fromConfig.
import { createHash } from "node:crypto";
import { BACKENDS, BACKEND_CLASS, DEFAULT_RUNTIMECLASS, type Backend, type DesiredHandler, type Probe, type SandboxConfigSpec, type SandboxNodeSpec } from "../api/index.js";
import { quantityToMiB } from "./quantity.js";

export { quantityToMiB };

export const DEFAULT_PREFERRED: readonly Backend[] = ["kata-qemu", "kata-clh", "kata-fc", "gvisor"];

export type DesiredNode = NonNullable<SandboxNodeSpec["desired"]>;

/** The SandboxConfig fields desired depends on (SandboxNode spec.fromConfig has exactly these). */
export type DesiredInputs = NonNullable<SandboxNodeSpec["fromConfig"]>;
type Inputs = Pick<SandboxConfigSpec, "runtimes" | "runtimeClassName" | "variants" | "allowedSandboxAnnotations" | "logLevel" | "verification" | "payloads">;

/**
 * spec.fromConfig for a SandboxNode: the inputs with their defaults spelled out and without what
 * desired ignores (variant overheads), so the stored copy compares equal to the next one computed.
 */
export function desiredInputs(spec: Inputs): DesiredInputs {
  const variants = (spec.variants ?? []).map(({ overhead: _, ...v }) => v);
  return {
    runtimes: { allowed: [...spec.runtimes.allowed], ...(spec.runtimes.preferred ? { preferred: [...spec.runtimes.preferred] } : {}) },
    runtimeClassName: spec.runtimeClassName ?? DEFAULT_RUNTIMECLASS,
    ...(variants.length ? { variants } : {}),
    ...(spec.allowedSandboxAnnotations?.length ? { allowedSandboxAnnotations: [...spec.allowedSandboxAnnotations].sort() } : {}),
    logLevel: spec.logLevel ?? "info",
    ...verificationOf(spec.verification),
    ...payloadsOf(spec.payloads, spec.runtimes.allowed),
  };
}

/** Backends the config allows and the probe says this node can run, in preference order. */
export function usableBackends(spec: Inputs, probe: Probe): Backend[] {
  const allowed = new Set(spec.runtimes.allowed);
  const usable = new Set(probe.backends.filter((b) => b.usable).map((b) => b.backend));
  const order = [...(spec.runtimes.preferred ?? []), ...DEFAULT_PREFERRED.filter((b) => !(spec.runtimes.preferred ?? []).includes(b))];
  return order.filter((b) => allowed.has(b) && usable.has(b));
}

/**
 * The CRI handlers a node gets: one per allowed+usable backend (named after its RuntimeClass),
 * one per variant whose backend is usable, and the general handler on the first usable
 * backend in preference order. None when nothing allowed is usable.
 */
export function desiredHandlers(spec: Inputs, probe: Probe): DesiredHandler[] {
  const usable = usableBackends(spec, probe);
  if (usable.length === 0) return [];
  const handlers: DesiredHandler[] = [{ name: spec.runtimeClassName ?? DEFAULT_RUNTIMECLASS, backend: usable[0]!, general: true }];
  for (const b of BACKENDS) if (usable.includes(b)) handlers.push({ name: BACKEND_CLASS[b], backend: b });
  for (const v of spec.variants ?? []) {
    if (!usable.includes(v.backend)) continue;
    const kata = v.backend === "gvisor" ? undefined : {
      ...(v.vcpus !== undefined ? { vcpus: v.vcpus } : {}),
      ...(v.memory !== undefined ? { memoryMiB: quantityToMiB(v.memory) } : {}),
      ...(v.kernelParams?.length ? { kernelParams: [...v.kernelParams] } : {}),
      ...(v.vfio ? { vfio: { plug: v.vfio.plug, port: v.vfio.port ?? "root-port", ...(v.vfio.rootPorts ? { rootPorts: v.vfio.rootPorts } : {}) } } : {}),
    };
    handlers.push({ name: v.name, backend: v.backend, ...(kata && Object.keys(kata).length ? { kata } : {}) });
  }
  return handlers;
}

/** `{ verification }` with only the fields set (secrets sorted), or `{}` when nothing is set. */
function verificationOf(v: SandboxConfigSpec["verification"]): Pick<DesiredNode, "verification"> {
  if (!v || !Object.keys(v).length) return {};
  return {
    verification: {
      ...(v.image ? { image: v.image } : {}),
      ...(v.imagePullPolicy ? { imagePullPolicy: v.imagePullPolicy } : {}),
      ...(v.imagePullSecrets?.length ? { imagePullSecrets: [...v.imagePullSecrets].sort() } : {}),
    },
  };
}

type PayloadImage = NonNullable<NonNullable<SandboxConfigSpec["payloads"]>["gvisor"]>;
const payloadOf = (p: PayloadImage): PayloadImage => ({ image: p.image, ...(p.imagePullPolicy ? { imagePullPolicy: p.imagePullPolicy } : {}) });

/**
 * `{ payloads }` with only the backends set, or `{}`: a config without payloads keeps its hash. The
 * Kata payload goes to every node while a Kata backend is allowed, whether or not Kata runs there:
 * a node learns whether guests run only once Kata is installed (docs/payloads.md).
 */
function payloadsOf(p: SandboxConfigSpec["payloads"], allowed: readonly Backend[]): Pick<DesiredNode, "payloads"> {
  const kata = p?.kata && allowed.some((b) => b !== "gvisor") ? p.kata : undefined;
  if (!p?.gvisor && !kata) return {};
  return { payloads: { ...(p?.gvisor ? { gvisor: payloadOf(p.gvisor) } : {}), ...(kata ? { kata: payloadOf(kata) } : {}) } };
}

/** Stable JSON (sorted keys) so the hash depends on content only. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** sha256 (hex, first 16) of desired without its hash, as docs/agent-contract.md defines. */
export function desiredHash(desired: Omit<DesiredNode, "hash">): string {
  return createHash("sha256").update(canonical(desired)).digest("hex").slice(0, 16);
}

export function desiredNode(spec: Inputs, probe: Probe): DesiredNode {
  const body: Omit<DesiredNode, "hash"> = {
    handlers: desiredHandlers(spec, probe),
    allowedAnnotations: [...(spec.allowedSandboxAnnotations ?? [])].sort(),
    logLevel: spec.logLevel ?? "info",
    // Only when set: a node's hash (and so whether it re-applies) stays as it was for configs without it.
    ...verificationOf(spec.verification),
    ...payloadsOf(spec.payloads, spec.runtimes.allowed),
  };
  return { hash: desiredHash(body), ...body };
}

/**
 * What a SandboxNode spec asks of a node with this probe: spec.desired, else desired computed from
 * spec.fromConfig (the first-install form, docs/agent-contract.md); undefined without either or a probe.
 */
export function specDesiredFor(spec: Pick<SandboxNodeSpec, "desired" | "fromConfig">, probe: Probe | undefined): DesiredNode | undefined {
  if (spec.desired) return spec.desired;
  return spec.fromConfig && probe ? desiredNode(spec.fromConfig, probe) : undefined;
}
