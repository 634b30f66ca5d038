// Which file the agent writes for the containerd it found: k3s/RKE2 and microk8s regenerate
// config.toml from a template at each start, k0s and `imports` directories take a drop-in, else config.toml.
import { existsSync } from "node:fs";
import { posix } from "node:path";
import { readOrNull } from "../../fsutil.js";
import { criPluginKey, globImportDirs, loadConfigFiles, localPath, type PathMaps, type Tree } from "./config-files.js";
import { parse } from "smol-toml";

export type Distribution = "k3s" | "rke2" | "microk8s" | "k0s" | "containerd";
/**
 * template: our block in the file the distribution renders config.toml from; drop-in: our own file
 * in a directory the config already imports; drop-in+import: our own file plus an `imports` entry
 * (containerd 2.x); in-place: our block in the file whose CRI section containerd 1.x uses.
 */
export type Method = "template" | "drop-in" | "drop-in+import" | "in-place";

export interface ContainerdLayout {
  distribution: Distribution;
  method: Method;
  /** The file we write (host path). */
  target: string;
  /** The config.toml containerd runs with (host path). */
  config: string;
  /** The text a missing template starts from (k3s/RKE2: the base template alone). */
  templateBase?: string;
  /** The distribution's systemd unit that regenerates and restarts containerd, when it has its own. */
  unit?: string;
  why: string;
}

export const OUR_FILE = "50-sandbox-operator.toml";
/** k3s/RKE2 (since September 2023) render their built-in config wherever a template says this. */
export const K3S_BASE_TEMPLATE = `{{ template "base" . }}\n`;

const read = (m: PathMaps, p: string) => readOrNull(localPath(m, p))?.toString("utf8") ?? null;
const exists = (m: PathMaps, p: string) => existsSync(localPath(m, p));

function tryParse(text: string | null): Tree | null {
  if (text === null) return null;
  try {
    return parse(text) as Tree;
  } catch {
    return null;
  }
}

/** k3s and RKE2 keep containerd's files in <data-dir>/agent/etc/containerd/ (default /var/lib/rancher/{k3s,rke2}). */
function rancher(m: PathMaps, config: string, major: number, tree: Tree | null): ContainerdLayout | undefined {
  const match = /^(.*)\/agent\/etc\/containerd\/config\.toml$/.exec(config);
  if (!match) return undefined;
  const dir = posix.dirname(config);
  const distribution = /\/rke2(\/|$)/.test(match[1]!) ? "rke2" : "k3s";
  const unit = distribution === "rke2" ? "rke2-server" : "k3s";
  const name = distribution === "rke2" ? "RKE2" : "k3s";
  // Newer k3s/RKE2 put `imports = [".../config-v3.toml.d/*.toml"]` into their base template: a drop-in there survives regeneration.
  const dropDir = `${dir}/${major >= 2 ? "config-v3.toml.d" : "config.toml.d"}`;
  if (major >= 2 && tree && globImportDirs(m, config, tree).includes(dropDir)) {
    return { distribution, method: "drop-in", target: `${dropDir}/${OUR_FILE}`, config, unit, why: `${name} regenerates ${config} at each start, and it imports ${dropDir}/*.toml` };
  }
  const v3 = `${dir}/config-v3.toml.tmpl`;
  const v2 = `${dir}/config.toml.tmpl`;
  // containerd 2.x builds read config-v3.toml.tmpl, falling back to config.toml.tmpl; 1.x builds read config.toml.tmpl.
  const template = major >= 2 ? (exists(m, v3) || !exists(m, v2) ? v3 : v2) : v2;
  const have = exists(m, template);
  return {
    distribution,
    method: "template",
    target: template,
    config,
    templateBase: K3S_BASE_TEMPLATE,
    unit,
    why: `${name} regenerates ${config} from ${posix.basename(template)} at each start${have ? "" : ` (created as {{ template "base" . }} plus our runtimes)`}`,
  };
}

/** microk8s renders args/containerd.toml from args/containerd-template.toml each time its containerd starts. */
function microk8s(m: PathMaps, config: string): ContainerdLayout | undefined {
  if (!/\/microk8s\/[^/]+\/args\/containerd\.toml$/.test(config)) return undefined;
  const template = `${posix.dirname(config)}/containerd-template.toml`;
  return { distribution: "microk8s", method: "template", target: template, config, unit: "snap.microk8s.daemon-containerd", why: `microk8s renders ${config} from ${template} each time its containerd starts` };
}

/** k0s owns /etc/k0s/containerd.toml while its first line says k0s_managed=true, and imports containerd.d/*.toml (merging CRI sections itself). */
function k0s(config: string, text: string | null): ContainerdLayout | undefined {
  if (!/\/k0s\/containerd\.toml$/.test(config) || !text || !/^#\s*k0s_managed\s*=\s*true\s*$/m.test(text)) return undefined;
  const target = `${posix.dirname(config)}/containerd.d/${OUR_FILE}`;
  return { distribution: "k0s", method: "drop-in", target, config, unit: "k0sworker", why: `k0s manages ${config} (k0s_managed=true) and loads drop-ins from ${posix.dirname(target)}` };
}

/**
 * containerd 1.x: the file whose CRI section containerd ends up using. An imported file that
 * defines [plugins."io.containerd.grpc.v1.cri"] replaces config.toml's whole CRI section (before
 * 2.0 imports replace plugin sections, not merge them), so our runtimes go into the last such file.
 */
export function criOwner(m: PathMaps, config: string): { path: string; importedBy?: string } {
  const files = loadConfigFiles(m, config, 1);
  const owners = files.filter((f) => criPluginKey(f.tree) !== undefined);
  const last = owners[owners.length - 1];
  return last && last.path !== config ? { path: last.path, importedBy: last.importedBy } : { path: config };
}

/** The layout of the containerd running with `config` (a host path), major version `major`. */
export function detectLayout(m: PathMaps, config: string, major: number): ContainerdLayout {
  const text = read(m, config);
  const tree = tryParse(text);
  const found = rancher(m, config, major, tree) ?? microk8s(m, config) ?? k0s(config, text);
  if (found) return found;
  if (major >= 2) {
    const dirs = tree ? globImportDirs(m, config, tree) : [];
    if (dirs.length) return { distribution: "containerd", method: "drop-in", target: `${dirs[0]}/${OUR_FILE}`, config, why: `${config} already imports ${dirs[0]}/*.toml` };
    return { distribution: "containerd", method: "drop-in+import", target: `${posix.dirname(config)}/conf.d/${OUR_FILE}`, config, why: `containerd ${major}.x merges imports: our drop-in plus one imports entry in ${config}` };
  }
  if (text === null) return { distribution: "containerd", method: "in-place", target: config, config, why: `no ${config}: written from containerd's defaults plus our block` };
  const owner = criOwner(m, config);
  if (owner.path !== config) {
    return {
      distribution: "containerd",
      method: "in-place",
      target: owner.path,
      config,
      why: `${owner.path} (imported by ${owner.importedBy ?? config}) defines [plugins."io.containerd.grpc.v1.cri"], which replaces the CRI section of ${config} on containerd 1.x; our block goes into it`,
    };
  }
  return { distribution: "containerd", method: "in-place", target: config, config, why: `containerd 1.x: a marked block in ${config} (an imported CRI section would replace its other CRI settings)` };
}

/** One line for logs and status.probe.cri.layout. */
export const describeLayout = (l: ContainerdLayout) => `${l.distribution}: ${l.method} ${l.target} (${l.why})`;
