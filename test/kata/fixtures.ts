// The SandboxConfig the Kata tests render from (every backend, an admin variant per backend) and the
// two install paths' Kata files: the agent's (DaemonSet) and the MachineConfig's Ignition files.
import type { Probe, SandboxConfigSpec } from "../../src/api/index.js";
import { desiredNode } from "../../src/controller/desired-node.js";
import { machineConfigContent, RHCOS_LAYOUT } from "../../src/controller/desired-machineconfig.js";
import { decodeDataUrl, renderMachineConfig } from "../../src/openshift/render-machineconfig.js";
import { renderContainerdRuntimes, runtimesKeyPath } from "../../src/render/node/containerd-runtimes.js";
import { renderKataConfigs, type RenderedFile } from "../../src/render/node/kata-config.js";
import { parse } from "smol-toml";
import { defaultLayout, type Layout } from "../../src/render/node/layout.js";
import { ALLOWED } from "./annotation-cases.js";

export const SPEC: SandboxConfigSpec = {
  nodeSelector: {},
  runtimes: { allowed: ["kata-qemu", "kata-clh", "kata-fc", "gvisor"] },
  allowedSandboxAnnotations: [...ALLOWED, "dev.gvisor.spec.mount.data.share"],
  variants: [
    { name: "big-vm", backend: "kata-qemu", vcpus: 64, memory: "8Gi", kernelParams: ["hugepages=16", "quiet"] },
    { name: "clh-tuned", backend: "kata-clh", vcpus: 1, memory: "3Gi", kernelParams: ["mitigations=auto,nosmt", "systemd.unified_cgroup_hierarchy=1"] },
    { name: "fc-small", backend: "kata-fc", vcpus: 1, memory: "1Gi", kernelParams: ["console=ttyS0"] },
    // Exclusive hardware: a device bound to vfio-pci, on the nodes labelled as having it.
    { name: "gpu", backend: "kata-qemu", memory: "4Gi", vfio: { plug: "cold-plug", port: "root-port", nodeSelector: { "feature.node.kubernetes.io/pci-10de.present": "true" } } },
    { name: "nic-hotplug", backend: "kata-clh", vfio: { plug: "hot-plug", rootPorts: 2, nodeSelector: { "example.com/sriov-vf": "true" } } },
  ],
} as SandboxConfigSpec;

const probe = (arch: string): Probe =>
  ({ arch, backends: (["kata-qemu", "kata-clh", "kata-fc", "gvisor"] as const).map((backend) => ({ backend, installed: true, usable: true })) }) as unknown as Probe;

/** The agent's path: desiredNode (what the controller hands the node) then the renderer call apply.ts makes, default layout. */
export function daemonSetKataFiles(spec: SandboxConfigSpec = SPEC, arch = "x64"): { layout: Layout; files: RenderedFile[]; shims: ShimEntries } {
  const layout = defaultLayout();
  const desired = desiredNode(spec, probe(arch));
  const rt = parse(renderContainerdRuntimes(desired.handlers, { layout, configVersion: 3 })) as Tree;
  const tables = runtimesKeyPath(3).reduce<Tree>((t, k) => t[k] as Tree, rt) as Record<string, { runtime_path: string; options: { ConfigPath: string } }>;
  const shims = Object.fromEntries(Object.entries(tables).map(([h, e]) => [h, { shim: e.runtime_path, config: e.options.ConfigPath }]));
  return { layout, files: renderKataConfigs(desired.handlers, { layout, arch, allowedAnnotations: desired.allowedAnnotations }), shims };
}

type Tree = Record<string, unknown>;
/** Per CRI handler: the shim binary and the Kata file the CRI runtime's own config names. */
export type ShimEntries = Record<string, { shim: string; config: string }>;

/** The MachineConfig's path: the Kata files as they sit, data: URLs decoded, in the rendered MachineConfig. */
export function machineConfigKataFiles(spec: SandboxConfigSpec = SPEC): { layout: Layout; files: RenderedFile[]; shims: ShimEntries } {
  const content = machineConfigContent(spec);
  const mc = renderMachineConfig("worker", content);
  const crio = (parse(content.crioDropIn) as { crio: { runtime: { runtimes: Record<string, { runtime_path: string; runtime_config_path?: string }> } } }).crio.runtime.runtimes;
  const shims = Object.fromEntries(Object.entries(crio).map(([h, e]) => [h, { shim: e.runtime_path, config: e.runtime_config_path ?? "" }]));
  const files = mc.spec.config.storage.files
    .filter((f) => f.path.startsWith(`${RHCOS_LAYOUT.installDir}/etc/kata/`))
    .map((f) => ({ path: f.path, content: decodeDataUrl(f.contents.source) }));
  return { layout: RHCOS_LAYOUT, files, shims };
}

export const handlerOf = (f: RenderedFile) => /configuration-(.+)\.toml$/.exec(f.path)![1]!;
