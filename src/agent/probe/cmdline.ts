// Reads the CRI runtime's and the kubelet's command lines (from /proc/<pid>/cmdline) for the
// config file and socket they really use, and picks the containerd the kubelet talks to. Pure.
import { posix } from "node:path";

export const DEFAULT_CONTAINERD_CONFIG = "/etc/containerd/config.toml";
export const DEFAULT_CONTAINERD_SOCKET = "/run/containerd/containerd.sock";
/** The kubelet's default --container-runtime-endpoint (containerRuntimeEndpoint) since 1.27. */
export const DEFAULT_KUBELET_ENDPOINT = "unix:///run/containerd/containerd.sock";

/** /proc/<pid>/cmdline: NUL-separated argv (a trailing NUL, or none when a process rewrote it). */
export function splitCmdline(raw: string): string[] {
  return raw.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1);
}

/**
 * Flag values from argv for the names given (each with its aliases), as Go's flag packages accept
 * them: `--name v`, `--name=v`, `-name v`, `-n v`; the last one wins. `positional` says whether an
 * argument that is no flag or flag value was seen (for containerd: a subcommand such as `config`).
 */
function flags(argv: readonly string[], names: Record<string, readonly string[]>, takesValue: ReadonlySet<string>): { values: Record<string, string>; positional: boolean } {
  const alias = new Map<string, string>();
  for (const [k, as] of Object.entries(names)) for (const a of [k, ...as]) alias.set(a, k);
  const out: Record<string, string> = {};
  let positional = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") {
      positional = true;
      continue;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/.exec(a)!;
    const name = m[1]!;
    const key = alias.get(name);
    let value = m[2];
    if (value === undefined && (key !== undefined || takesValue.has(name)) && i + 1 < argv.length) value = argv[++i];
    if (key !== undefined && value !== undefined) out[key] = value;
  }
  return { values: out, positional };
}

/** containerd's global flags that take a value (so their value is not mistaken for a subcommand). */
const CONTAINERD_VALUE_FLAGS = new Set(["config", "c", "address", "a", "root", "state", "log-level", "l"]);

/** The daemon's --config/-c and --address/-a, as it sees them; null when argv is not a containerd daemon. */
export function parseContainerdArgs(argv: readonly string[]): { config?: string; address?: string } | null {
  if (argv.length === 0 || posix.basename(argv[0]!) !== "containerd") return null;
  const { values: f, positional } = flags(argv, { config: ["c"], address: ["a"] }, CONTAINERD_VALUE_FLAGS);
  // `containerd config default`, `containerd --address x ctr-like subcommand`: not the daemon.
  if (positional) return null;
  return { ...(f.config !== undefined ? { config: f.config } : {}), ...(f.address !== undefined ? { address: f.address } : {}) };
}

/** The kubelet's --container-runtime-endpoint and --config (its KubeletConfiguration file); null when not a kubelet. */
export function parseKubeletArgs(argv: readonly string[]): { endpoint?: string; config?: string } | null {
  if (argv.length === 0 || posix.basename(argv[0]!) !== "kubelet") return null;
  const f = flags(argv, { "container-runtime-endpoint": [], config: [] }, new Set()).values;
  const endpoint = f["container-runtime-endpoint"];
  return { ...(endpoint !== undefined ? { endpoint } : {}), ...(f.config !== undefined ? { config: f.config } : {}) };
}

/** A CRI endpoint (`unix:///run/x.sock` or a bare path) as a socket path; undefined for other schemes (npipe, tcp). */
export function endpointPath(endpoint: string): string | undefined {
  if (endpoint.startsWith("unix://")) return endpoint.slice("unix://".length) || undefined;
  return endpoint.startsWith("/") ? endpoint : undefined;
}

/** A containerd daemon seen in /proc, with its paths as it sees them (defaults filled in). */
export interface ContainerdProcess {
  pid: number;
  config: string;
  address: string;
  /** --config was given (else containerd reads its default path). */
  explicitConfig: boolean;
}

export function containerdProcess(pid: number, argv: readonly string[]): ContainerdProcess | null {
  const p = parseContainerdArgs(argv);
  if (!p) return null;
  return { pid, config: p.config ?? DEFAULT_CONTAINERD_CONFIG, address: p.address ?? DEFAULT_CONTAINERD_SOCKET, explicitConfig: p.config !== undefined };
}

export interface Choice {
  chosen?: ContainerdProcess;
  /** Why this one (or why none), for status.probe.cri.source. */
  why: string;
}

/**
 * Which containerd serves the node's CRI: the one on the socket the admin named, else the one on
 * the kubelet's endpoint, else the only candidate, else the one on the default socket. Without
 * --cri-socket the candidates are those whose socket lies under the host root. `serves(p, kind)` says whether p's socket is that socket (the shell compares inodes).
 */
export function chooseContainerd(candidates: readonly ContainerdProcess[], hints: { criSocket?: string; kubeletEndpoint?: string }, serves: (p: ContainerdProcess, which: "cri-socket" | "kubelet") => boolean): Choice {
  if (hints.criSocket) {
    const p = candidates.find((c) => serves(c, "cri-socket"));
    return p ? { chosen: p, why: `serves --cri-socket ${hints.criSocket}` } : { why: `no containerd process serves --cri-socket ${hints.criSocket}` };
  }
  if (hints.kubeletEndpoint) {
    const p = candidates.find((c) => serves(c, "kubelet"));
    if (p) return { chosen: p, why: `serves the kubelet's endpoint ${hints.kubeletEndpoint}` };
  }
  if (candidates.length === 1) return { chosen: candidates[0], why: "the only containerd serving a socket under the host root" };
  const onDefault = candidates.filter((c) => c.address === DEFAULT_CONTAINERD_SOCKET);
  if (onDefault.length === 1) return { chosen: onDefault[0], why: `serves the default socket (${candidates.length} containerd processes)` };
  if (candidates.length === 0) return { why: "no containerd process found in /proc (does the agent pod have hostPID?)" };
  return { why: `${candidates.length} containerd processes (pids ${candidates.map((c) => c.pid).join(", ")}) and none is the kubelet's: pass --cri-socket` };
}

/**
 * The systemd unit a process runs in, from /proc/<pid>/cgroup: the last `*.service` of its
 * name=systemd (cgroup v1) or unified (v2) path, e.g. k3s.service for k3s's embedded containerd.
 */
export function systemdUnitOf(cgroup: string): string | undefined {
  const lines = cgroup.split("\n");
  const path = lines.find((l) => /^\d+:name=systemd:/.test(l)) ?? lines.find((l) => /^0::/.test(l));
  const units = (path?.split(":").slice(2).join(":") ?? "").split("/").filter((s) => s.endsWith(".service"));
  return units[units.length - 1];
}
