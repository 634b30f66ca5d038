// RuntimeClasses on the MachineConfig path: the shared builder (src/render/desired-runtimeclasses.ts,
// the same one the DaemonSet path uses) restricted to the backends the RHCOS extension provides.
import type { Backend, SandboxConfig } from "../api/index.js";
import { desiredRuntimeClasses, RUNTIME_LABEL_PREFIX, runtimeLabel, type RuntimeClassObject } from "../render/desired-runtimeclasses.js";

export { RUNTIME_LABEL_PREFIX, runtimeLabel, type RuntimeClassObject };

/** The RHCOS `sandboxed-containers` extension ships Kata with QEMU only; other backends need the DaemonSet path. */
export const MACHINECONFIG_BACKENDS: readonly Backend[] = ["kata-qemu"];
/** Marks RuntimeClasses this path published, so its cleanup removes only those. */
export const INSTALL_METHOD_LABEL = "sandboxing.dev/install-method";

/** Backends this path can install for the config: allowed ∩ what the extension ships, in preference order. */
export function machineConfigBackends(config: SandboxConfig): Backend[] {
  const order = config.spec.runtimes.preferred?.length ? config.spec.runtimes.preferred : config.spec.runtimes.allowed;
  const allowed = new Set(config.spec.runtimes.allowed);
  return order.filter((b) => allowed.has(b) && MACHINECONFIG_BACKENDS.includes(b));
}

/** The RuntimeClasses the MachineConfig path publishes (none when no allowed backend is installable here). */
export function machineConfigRuntimeClasses(config: SandboxConfig): RuntimeClassObject[] {
  return desiredRuntimeClasses(config.spec, { backends: machineConfigBackends(config), labels: { [INSTALL_METHOD_LABEL]: "MachineConfig" } });
}
