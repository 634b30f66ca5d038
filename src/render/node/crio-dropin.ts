// CRI-O drop-in for our handlers (Kata and gVisor as runtime_type "vm", each through its shim). Pure;
// the agent writes it to /etc/crio/crio.conf.d and the OpenShift MachineConfig path embeds the same bytes.
import type { DesiredHandler } from "../../api/sandboxnode.js";
import { annotationsFor, isKata, kataConfigPath, runscConfigPath, tomlArray, tomlKey, tomlString, type Layout } from "./layout.js";

export interface CrioRenderOptions {
  layout: Layout;
  /** Pod annotation keys the admin allowed; each backend gets only its own prefix. Empty = none. */
  allowedAnnotations?: readonly string[];
}

export function renderCrioDropIn(handlers: readonly DesiredHandler[], opts: CrioRenderOptions): string {
  const sorted = [...handlers].sort((a, b) => a.name.localeCompare(b.name));
  const out = [
    `# CRI runtimes of sandbox-operator. Owned by it: replaced on apply, removed on uninstall. Do not edit.`,
    ``,
  ];
  for (const h of sorted) {
    const kata = isKata(h.backend);
    out.push(`[crio.runtime.runtimes.${tomlKey(h.name)}]`);
    if (kata) {
      out.push(
        `runtime_path = ${tomlString(opts.layout.kataShim)}`,
        `runtime_type = "vm"`,
        `runtime_root = "/run/vc"`,
        `runtime_config_path = ${tomlString(kataConfigPath(opts.layout, h.name))}`,
      );
    } else {
      // Not runsc as an "oci" runtime: conmon waits on the process runsc starts, which under gVisor
      // is not the container's, and CRI-O drops the infra container gVisor builds its sandbox from.
      // Through its shim, like containerd; runsc.toml names runsc and carries --runsc-flag.
      // runtime_root: where CRI-O keeps a "vm" runtime's IO fifos (relative paths without it).
      out.push(`runtime_path = ${tomlString(opts.layout.gvisorShim)}`, `runtime_type = "vm"`, `runtime_root = "/run/runsc"`, `runtime_config_path = ${tomlString(runscConfigPath(opts.layout))}`);
    }
    out.push(
      `privileged_without_host_devices = true`,
      `allowed_annotations = ${tomlArray(annotationsFor(h.backend, opts.allowedAnnotations))}`,
      ``,
    );
  }
  return out.join("\n");
}
