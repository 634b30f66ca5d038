// What the MachineConfig path writes on RHCOS nodes: the agent's own CRI-O drop-in and Kata
// renderers (the same bytes a DaemonSet agent would write), fed the handlers a kata-qemu node gets.
import type { Probe, SandboxConfigSpec } from "../api/index.js";
import { renderCrioDropIn } from "../render/node/crio-dropin.js";
import { renderKataConfigs } from "../render/node/kata-config.js";
import { defaultLayout, type Layout } from "../render/node/layout.js";
import type { MachineConfigContent } from "../openshift/render-machineconfig.js";
import { MACHINECONFIG_BACKENDS } from "../openshift/render-runtimeclasses.js";
import { desiredHandlers } from "./desired-node.js";

/**
 * RHCOS: the `sandboxed-containers` extension installs Kata under /usr (read-only ostree), and
 * the MCO may only write under /etc and /var, so our Kata configuration files live under /etc.
 */
export const RHCOS_LAYOUT: Layout = defaultLayout({ installDir: "/etc/sandbox-operator", kataDir: "/usr" });

/**
 * The CRI handlers every node of the pool gets. The MCO gives each node the same files, so there
 * is no per-node probe: the backends are the ones the extension ships, as if each node had probed them usable.
 */
export function machineConfigHandlers(spec: SandboxConfigSpec) {
  const extensionProbe = { backends: MACHINECONFIG_BACKENDS.map((backend) => ({ backend, installed: true, usable: true })) } as unknown as Probe;
  return desiredHandlers(spec, extensionProbe);
}

export function machineConfigContent(spec: SandboxConfigSpec): MachineConfigContent {
  const handlers = machineConfigHandlers(spec);
  const allowedAnnotations = [...(spec.allowedSandboxAnnotations ?? [])].sort();
  return {
    crioDropIn: renderCrioDropIn(handlers, { layout: RHCOS_LAYOUT, allowedAnnotations }),
    kataFiles: renderKataConfigs(handlers, { layout: RHCOS_LAYOUT, allowedAnnotations }),
  };
}
