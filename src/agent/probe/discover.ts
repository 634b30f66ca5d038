// Finds the containerd the node's kubelet really uses: its process in /proc (the host's, since the
// agent pod has hostPID), the --config and --address it runs with, mapped under the host root.
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { parse as parseYaml } from "yaml";
import { chooseContainerd, containerdProcess, DEFAULT_CONTAINERD_CONFIG, DEFAULT_KUBELET_ENDPOINT, endpointPath, parseKubeletArgs, splitCmdline, systemdUnitOf, type ContainerdProcess } from "./cmdline.js";

export interface DiscoverOptions {
  /** Where the host's filesystem is mounted ("/" on the host itself). */
  hostRoot: string;
  /** Prefix the runtime sees in front of host paths (tests, whose containerd runs on a temp host root); "" on a node. */
  configPrefix?: string;
  /** --cri-socket, as this process sees it: the containerd serving it is the one. */
  criSocket?: string;
  /** --containerd-config: the config.toml to edit (host path), whatever the process says. */
  containerdConfig?: string;
  /** The host's /proc (the agent's own with hostPID). */
  procRoot?: string;
}

export interface Discovered {
  /** The chosen containerd's socket as this process opens it, when it lies under the host root. */
  socket?: string;
  /** The config.toml to edit, as a host path. */
  configPath: string;
  /** How socket and config were chosen, for status.probe.cri.source. */
  source: string;
  /** The systemd unit the chosen containerd runs in (its cgroup), e.g. containerd.service or k3s.service. */
  unit?: string;
}

interface Identity {
  dev: number;
  ino: number;
}

function identity(path: string): Identity | undefined {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

const same = (a?: Identity, b?: Identity) => !!a && !!b && a.dev === b.dev && a.ino === b.ino;

/** Every process's argv; processes that end or hide theirs meanwhile are skipped. */
function processes(procRoot: string): Array<{ pid: number; argv: string[] }> {
  const out: Array<{ pid: number; argv: string[] }> = [];
  for (const name of readdirSync(procRoot)) {
    if (!/^\d+$/.test(name)) continue;
    try {
      out.push({ pid: Number(name), argv: splitCmdline(readFileSync(join(procRoot, name, "cmdline"), "latin1")) });
    } catch {
      // Gone, or not ours to read.
    }
  }
  return out;
}

/** The CRI endpoint a kubelet uses: its flag, else containerRuntimeEndpoint in its --config file, else the default. */
function kubeletEndpoint(procRoot: string, pid: number, args: { endpoint?: string; config?: string }): string {
  if (args.endpoint) return args.endpoint;
  if (args.config) {
    try {
      // Read the file as the kubelet sees it: its root, its working directory.
      const abs = args.config.startsWith("/") ? args.config : posix.join(readlinkSync(join(procRoot, String(pid), "cwd")), args.config);
      const cfg = parseYaml(readFileSync(join(procRoot, String(pid), "root", abs), "utf8")) as { containerRuntimeEndpoint?: unknown } | null;
      if (typeof cfg?.containerRuntimeEndpoint === "string" && cfg.containerRuntimeEndpoint) return cfg.containerRuntimeEndpoint;
    } catch {
      // Unreadable config: the kubelet's default is the best guess.
    }
  }
  return DEFAULT_KUBELET_ENDPOINT;
}

export function discoverContainerd(o: DiscoverOptions): Discovered {
  const procRoot = o.procRoot ?? "/proc";
  const prefix = (o.configPrefix ?? "").replace(/\/+$/, "");
  // A path as the runtime sees it -> the host path (undefined when it is not under the host root).
  const hostView = (p: string): string | undefined => {
    if (!p.startsWith("/")) return undefined;
    if (!prefix) return p;
    return p === prefix || p.startsWith(`${prefix}/`) ? p.slice(prefix.length) || "/" : undefined;
  };
  const local = (hostPath: string) => (o.hostRoot === "/" ? hostPath : join(o.hostRoot, hostPath));
  const reachable = (p: ContainerdProcess) => {
    const h = hostView(p.address);
    return h !== undefined && existsSync(local(h));
  };
  const all = processes(procRoot);
  const daemons = all.flatMap((p) => containerdProcess(p.pid, p.argv) ?? []);
  const kubelets = all.flatMap((p) => {
    const args = parseKubeletArgs(p.argv);
    const path = args && endpointPath(kubeletEndpoint(procRoot, p.pid, args));
    return path ? [{ pid: p.pid, path }] : [];
  });
  // Sockets compare by inode, each path resolved in its own process's root (containers, chroots).
  const socketOf = (p: ContainerdProcess) => identity(join(procRoot, String(p.pid), "root", p.address));
  const criId = o.criSocket ? identity(o.criSocket) : undefined;
  const kubeletIds = kubelets.map((k) => identity(join(procRoot, String(k.pid), "root", k.path)));
  const hints = { criSocket: o.criSocket, kubeletEndpoint: kubelets.length ? kubelets.map((k) => `unix://${k.path} (kubelet pid ${k.pid})`).join(", ") : undefined };
  const candidates = o.criSocket ? daemons : daemons.filter(reachable);
  const choice = chooseContainerd(candidates, hints, (p, which) => (which === "cri-socket" ? same(socketOf(p), criId) : kubeletIds.some((k) => same(socketOf(p), k))));
  if (!choice.chosen && candidates.length === 0 && daemons.length > 0) {
    choice.why = `${daemons.length} containerd process(es) in /proc, none serving a socket under the host root ${o.hostRoot}${prefix ? ` (runtime prefix ${prefix})` : ""}`;
  }
  const c = choice.chosen;
  const seen = c ? `containerd pid ${c.pid} (--config ${c.explicitConfig ? c.config : `unset: ${DEFAULT_CONTAINERD_CONFIG}`}, --address ${c.address}) ${choice.why}` : choice.why;
  let configPath = DEFAULT_CONTAINERD_CONFIG;
  let configWhy = "containerd's default path";
  if (o.containerdConfig) {
    configPath = o.containerdConfig;
    configWhy = "--containerd-config";
  } else if (c) {
    const h = hostView(c.config);
    if (h) {
      configPath = h;
      configWhy = c.explicitConfig ? "its --config" : "its default path (no --config)";
    } else configWhy = `its --config ${c.config} is not under the host root, so containerd's default path`;
  }
  const socketHost = c && !o.criSocket ? hostView(c.address) : undefined;
  let unit: string | undefined;
  try {
    unit = c ? systemdUnitOf(readFileSync(join(procRoot, String(c.pid), "cgroup"), "utf8")) : undefined;
  } catch {
    // Gone meanwhile: the layout's or the default unit.
  }
  return {
    ...(unit ? { unit } : {}),
    socket: o.criSocket ?? (socketHost !== undefined && c && reachable(c) ? local(socketHost) : undefined),
    configPath,
    source: `${seen}; config ${configPath} from ${configWhy}`,
  };
}
