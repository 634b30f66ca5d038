// Minimal RuntimeClass builder for the MachineConfig path (the controller's builder may replace
// it): the general class plus one per backend the RHCOS extension provides, scheduled on labelled nodes.
import { BACKEND_CLASS, DEFAULT_RUNTIMECLASS, type Backend, type SandboxConfig } from "../api/index.js";
import { MANAGED_BY } from "./render-machineconfig.js";

/** The RHCOS `sandboxed-containers` extension ships Kata with QEMU only; other backends need the DaemonSet path. */
export const MACHINECONFIG_BACKENDS: readonly Backend[] = ["kata-qemu"];
export const RUNTIME_LABEL_PREFIX = "sandboxing.dev/runtime.";
/** Marks RuntimeClasses this path published, so cleanup removes only those. */
export const INSTALL_METHOD_LABEL = "sandboxing.dev/install-method";

export const runtimeLabel = (className: string) => `${RUNTIME_LABEL_PREFIX}${className}`;

/** Documented default per-pod overhead of a Kata QEMU guest (VM memory + shim), overridable in spec.overhead. */
const DEFAULT_OVERHEAD: Record<Backend, { cpu: string; memory: string }> = {
  "kata-qemu": { cpu: "250m", memory: "350Mi" },
  "kata-clh": { cpu: "250m", memory: "250Mi" },
  "kata-fc": { cpu: "250m", memory: "200Mi" },
  gvisor: { cpu: "100m", memory: "100Mi" },
};

export interface RuntimeClassObject {
  apiVersion: "node.k8s.io/v1";
  kind: "RuntimeClass";
  metadata: { name: string; labels: Record<string, string> };
  handler: string;
  overhead: { podFixed: { cpu: string; memory: string } };
  scheduling: { nodeSelector: Record<string, string>; tolerations?: unknown[] };
}

/** Backends this path can install for the config: allowed ∩ what the extension ships, in preference order. */
export function machineConfigBackends(config: SandboxConfig): Backend[] {
  const order = config.spec.runtimes.preferred?.length ? config.spec.runtimes.preferred : config.spec.runtimes.allowed;
  const allowed = new Set(config.spec.runtimes.allowed);
  return order.filter((b) => allowed.has(b) && MACHINECONFIG_BACKENDS.includes(b));
}

export function renderRuntimeClasses(config: SandboxConfig, backends: Backend[] = machineConfigBackends(config)): RuntimeClassObject[] {
  if (backends.length === 0) return [];
  const rc = (name: string, backend: Backend, own: { cpu?: string; memory?: string } = {}): RuntimeClassObject => {
    const o = { ...DEFAULT_OVERHEAD[backend], ...(config.spec.overhead?.[backend] ?? {}), ...own };
    const scheduling: RuntimeClassObject["scheduling"] = { nodeSelector: { [runtimeLabel(name)]: "true" } };
    if (config.spec.tolerations?.length) scheduling.tolerations = config.spec.tolerations;
    return {
      apiVersion: "node.k8s.io/v1",
      kind: "RuntimeClass",
      metadata: { name, labels: { ...MANAGED_BY, [INSTALL_METHOD_LABEL]: "MachineConfig" } },
      handler: name,
      overhead: { podFixed: { cpu: o.cpu, memory: o.memory } },
      scheduling,
    };
  };
  const general = config.spec.runtimeClassName ?? DEFAULT_RUNTIMECLASS;
  const out = [rc(general, backends[0]!), ...backends.map((b) => rc(BACKEND_CLASS[b], b))];
  for (const v of config.spec.variants ?? []) if (backends.includes(v.backend)) out.push(rc(v.name, v.backend, v.overhead));
  return out;
}
