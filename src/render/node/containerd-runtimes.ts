// containerd CRI configuration for our handlers: the runtime tables (config versions 1, 2, 3),
// the managed block spliced into a 1.x config.toml, and the `imports` edit for a 2.x drop-in. Pure.
import type { DesiredHandler } from "../../api/sandboxnode.js";
import { annotationsFor, isKata, kataConfigPath, runscConfigPath, tomlArray, tomlKey, tomlString, type Layout } from "./layout.js";

export type ContainerdConfigVersion = 1 | 2 | 3;

export interface ContainerdRenderOptions {
  layout: Layout;
  /** `version` of the config.toml being edited: 1 (containerd 1.x legacy), 2 (1.x), 3 (2.x). */
  configVersion: ContainerdConfigVersion;
  allowedAnnotations?: readonly string[];
  /**
   * Name of the default runtime (default_runtime_name, "runc") to re-declare with containerd's
   * defaults. containerd decodes `runtimes` as a whole map: a config that relied on the built-in
   * runc entry loses it once any runtime table appears, and the CRI plugin then refuses to load.
   */
  redeclareDefault?: string;
  /** Put the shim's absolute path in runtime_type (containerd 1.x, which finds shims by name on $PATH otherwise). */
  runtimeTypeAsPath?: boolean;
}

/** Where CRI runtime tables live for each config version. */
export function runtimesPrefix(version: ContainerdConfigVersion): string {
  if (version === 3) return `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`;
  if (version === 2) return `plugins."io.containerd.grpc.v1.cri".containerd.runtimes`;
  return `plugins.cri.containerd.runtimes`;
}

/** Path segments of runtimesPrefix, for reading a parsed config. */
export function runtimesKeyPath(version: ContainerdConfigVersion): string[] {
  if (version === 3) return ["plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes"];
  if (version === 2) return ["plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes"];
  return ["plugins", "cri", "containerd", "runtimes"];
}

export interface RuntimeEntry {
  runtime_type: string;
  runtime_path: string;
  privileged_without_host_devices: boolean;
  pod_annotations: string[];
  options: { TypeUrl: string; ConfigPath: string };
}

/** The runtime entry for one handler, as containerd will parse it. */
export function runtimeEntry(h: DesiredHandler, opts: ContainerdRenderOptions): RuntimeEntry {
  const kata = isKata(h.backend);
  return {
    // Kata's one shim binary serves every hypervisor; the configuration file picks the hypervisor.
    // containerd 1.x resolves a sandbox's shim from runtime_type only (runtime_path is ignored for
    // pod sandboxes in 1.6), and takes an absolute path there; 2.x honours runtime_path.
    runtime_type: opts.runtimeTypeAsPath ? (kata ? opts.layout.kataShim : opts.layout.gvisorShim) : kata ? "io.containerd.kata.v2" : "io.containerd.runsc.v1",
    runtime_path: kata ? opts.layout.kataShim : opts.layout.gvisorShim,
    // A privileged pod in a sandbox must not get the host's /dev.
    privileged_without_host_devices: true,
    // Empty unless the admin allowed keys: Kata annotations can reconfigure the VM (GHSA-rr59-xxvx-96qr).
    pod_annotations: annotationsFor(h.backend, opts.allowedAnnotations),
    options: kata
      ? { TypeUrl: "io.containerd.kata.v2.options", ConfigPath: kataConfigPath(opts.layout, h.name) }
      : { TypeUrl: "io.containerd.runsc.v1.options", ConfigPath: runscConfigPath(opts.layout) },
  };
}

/** TOML tables for every handler, sorted by name so equal input gives equal bytes. */
export function renderContainerdRuntimes(handlers: readonly DesiredHandler[], opts: ContainerdRenderOptions): string {
  const prefix = runtimesPrefix(opts.configVersion);
  const sorted = [...handlers].sort((a, b) => a.name.localeCompare(b.name));
  const parts: string[] = [];
  if (opts.redeclareDefault) {
    parts.push(`[${prefix}.${tomlKey(opts.redeclareDefault)}]`, `  runtime_type = "io.containerd.runc.v2"`, ``);
  }
  for (const h of sorted) {
    const e = runtimeEntry(h, opts);
    const table = `${prefix}.${tomlKey(h.name)}`;
    parts.push(
      `[${table}]`,
      `  runtime_type = ${tomlString(e.runtime_type)}`,
      `  runtime_path = ${tomlString(e.runtime_path)}`,
      `  privileged_without_host_devices = ${e.privileged_without_host_devices}`,
      `  pod_annotations = ${tomlArray(e.pod_annotations)}`,
      `[${table}.options]`,
      `  TypeUrl = ${tomlString(e.options.TypeUrl)}`,
      `  ConfigPath = ${tomlString(e.options.ConfigPath)}`,
      ``,
    );
  }
  return parts.join("\n");
}

/** A drop-in: a whole file we own, merged by containerd's `imports` (version 3 unless the root config has a lower one). */
export function renderContainerdDropIn(handlers: readonly DesiredHandler[], opts: Omit<ContainerdRenderOptions, "configVersion"> & { configVersion?: ContainerdConfigVersion }): string {
  const configVersion = opts.configVersion ?? 3;
  return [
    `# CRI runtimes of sandbox-operator. Owned by it: replaced on apply, removed on uninstall. Do not edit.`,
    `version = ${configVersion}`,
    ``,
    renderContainerdRuntimes(handlers, { ...opts, configVersion }),
  ].join("\n");
}

export const BLOCK_BEGIN = "# BEGIN sandbox-operator: managed block, replaced on apply and removed on uninstall. Do not edit.";
export const BLOCK_END = "# END sandbox-operator";

/**
 * containerd 1.x: appends our runtime tables as one marked block at the end of config.toml and
 * leaves every other byte alone. (Before 2.0 an import replaces whole plugin sections, so a
 * drop-in would wipe the admin's CRI settings.) Replaces an earlier block of ours.
 */
export function spliceManagedBlock(original: string, block: string): string {
  const base = stripManagedBlock(original);
  const sep = base.length === 0 || base.endsWith("\n") ? "" : "\n";
  return `${base}${sep}\n${BLOCK_BEGIN}\n${block.trimEnd()}\n${BLOCK_END}\n`;
}

/** The text without our block (and the blank line we put before it). */
export function stripManagedBlock(text: string): string {
  const start = text.indexOf(`\n${BLOCK_BEGIN}\n`);
  const atStart = text.startsWith(`${BLOCK_BEGIN}\n`);
  if (start < 0 && !atStart) return text;
  const from = atStart ? 0 : start + 1;
  const endMarker = text.indexOf(`${BLOCK_END}\n`, from);
  if (endMarker < 0) throw new Error(`config.toml: found "${BLOCK_BEGIN}" without "${BLOCK_END}"; restore the file from its backup`);
  let head = text.slice(0, from);
  if (head.endsWith("\n\n") || head === "\n") head = head.slice(0, -1);
  return head + text.slice(endMarker + BLOCK_END.length + 1);
}

/**
 * containerd 2.x: the config.toml text with `path` in its top-level `imports`, or null when an
 * existing import (exact or `dir/*.toml` glob) already covers it and nothing needs to change.
 */
export function addImport(original: string, path: string, existing: readonly string[]): string | null {
  if (existing.some((i) => i === path || globCovers(i, path))) return null;
  const lines = original.split("\n");
  // A top-level key comes before the first table header; an `imports` key inside a table is someone else's.
  const firstTable = lines.findIndex((l) => /^\s*\[/.test(l));
  const idx = lines.findIndex((l, i) => (firstTable < 0 || i < firstTable) && /^imports\s*=/.test(l));
  if (idx >= 0) {
    const m = /^imports\s*=\s*\[(.*)\]\s*(#.*)?$/.exec(lines[idx]!);
    if (!m) throw new Error(`config.toml: the top-level "imports" spans several lines; put it on one line or add ${path} to it by hand`);
    const inner = m[1]!.trim().replace(/,\s*$/, "");
    lines[idx] = `imports = [${inner ? `${inner}, ` : ""}${tomlString(path)}]${m[2] ? ` ${m[2]}` : ""}`;
    return lines.join("\n");
  }
  const at = firstTable < 0 ? lines.length : firstTable;
  lines.splice(at, 0, `imports = [${tomlString(path)}]`);
  return lines.join("\n");
}

function globCovers(glob: string, path: string): boolean {
  if (!glob.includes("*")) return false;
  const re = new RegExp("^" + glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*") + "$");
  return re.test(path);
}
