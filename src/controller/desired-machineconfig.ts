// What the MachineConfig path writes on RHCOS nodes: the shared node renderers' CRI-O drop-in, Kata
// configuration and runsc.toml (the same bytes a DaemonSet agent would write), for the pool's handlers.
import type { Backend, Probe, SandboxConfigSpec } from "../api/index.js";
import { renderCrioDropIn } from "../render/node/crio-dropin.js";
import { renderKataConfigs } from "../render/node/kata-config.js";
import { defaultLayout, runscConfigPath, type Layout } from "../render/node/layout.js";
import { renderRunscConfig } from "../render/node/runsc-config.js";
import type { MachineConfigContent } from "../openshift/render-machineconfig.js";
import { MACHINECONFIG_BACKENDS } from "../openshift/render-runtimeclasses.js";
import { desiredHandlers } from "./desired-node.js";

/**
 * RHCOS: the `sandboxed-containers` extension installs Kata under /usr (read-only ostree), and
 * the MCO may only write under /etc and /var, so our Kata configuration files live under /etc.
 */
export const RHCOS_LAYOUT: Layout = defaultLayout({ installDir: "/etc/sandbox-operator", kataDir: "/usr" });

export interface MachineConfigContentOptions {
  /**
   * Backends every node of the pool has installed and usable (default: what the RHCOS extension
   * ships, Kata with QEMU). gVisor needs runsc and its shim at the layout's paths: nothing on RHCOS ships them.
   */
  backends?: readonly Backend[];
  /** Where the files go and the binaries are on the node (default RHCOS_LAYOUT). */
  layout?: Layout;
  /**
   * The same layout as the CRI runtime sees it, which the files' contents name (default: layout).
   * It differs only where a test's CRI-O reads a host root from outside, as the agent's configPrefix does.
   */
  runtimeLayout?: Layout;
}

/**
 * The CRI handlers every node of the pool gets. The MCO gives each node the same files, so there
 * is no per-node probe: the backends are the given ones, as if each node had probed them usable.
 */
export function machineConfigHandlers(spec: SandboxConfigSpec, backends: readonly Backend[] = MACHINECONFIG_BACKENDS) {
  const poolProbe = { backends: backends.map((backend) => ({ backend, installed: true, usable: true })) } as unknown as Probe;
  return desiredHandlers(spec, poolProbe);
}

export function machineConfigContent(spec: SandboxConfigSpec, opts: MachineConfigContentOptions = {}): MachineConfigContent {
  const layout = opts.layout ?? RHCOS_LAYOUT;
  const runtimeLayout = opts.runtimeLayout ?? layout;
  const handlers = machineConfigHandlers(spec, opts.backends);
  const allowedAnnotations = [...(spec.allowedSandboxAnnotations ?? [])].sort();
  // As the agent does: where a Kata file goes is a node path, what it names is in the runtime's view.
  const kataAt = renderKataConfigs(handlers, { layout, allowedAnnotations });
  const kataContent = renderKataConfigs(handlers, { layout: runtimeLayout, allowedAnnotations });
  return {
    crioDropIn: renderCrioDropIn(handlers, { layout: runtimeLayout, allowedAnnotations }),
    kataFiles: kataAt.map((f, i) => ({ path: f.path, content: kataContent[i]!.content })),
    ...(handlers.some((h) => h.backend === "gvisor") ? { runscConfig: { path: runscConfigPath(layout), content: renderRunscConfig(runtimeLayout) } } : {}),
  };
}
