// What a cluster node changes on the host it shares a kernel and network namespace with: global
// sysctls, links, iptables/nftables rules, netns and log directories. Snapshot, restore, compare.
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * Keys the kubelet (setupKernelTunables), kube-proxy and the CNI bridge plugin may write. None are
 * per-container: the kernel.* and vm.* keys are global, the net.* ones belong to the host netns.
 */
export const TOUCHED_SYSCTLS = [
  "vm.overcommit_memory",
  "vm.panic_on_oom",
  "kernel.panic",
  "kernel.panic_on_oops",
  "kernel.keys.root_maxkeys",
  "kernel.keys.root_maxbytes",
  "net.ipv4.ip_forward",
  "net.ipv4.conf.all.route_localnet",
  "net.ipv6.conf.all.forwarding",
  "net.bridge.bridge-nf-call-iptables",
  "net.bridge.bridge-nf-call-ip6tables",
  "net.netfilter.nf_conntrack_max",
  "net.netfilter.nf_conntrack_tcp_timeout_established",
  "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
  "net.netfilter.nf_conntrack_tcp_be_liberal",
];

const sysctlPath = (key: string) => join("/proc/sys", ...key.split("."));

export function readSysctls(keys = TOUCHED_SYSCTLS): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (existsSync(sysctlPath(k))) out[k] = readFileSync(sysctlPath(k), "utf8").trim();
  return out;
}

/** Writes back every saved value that changed; returns the keys it restored. */
export function restoreSysctls(saved: Record<string, string>): string[] {
  const restored: string[] = [];
  for (const [k, v] of Object.entries(saved)) {
    if (readFileSync(sysctlPath(k), "utf8").trim() === v) continue;
    writeFileSync(sysctlPath(k), v);
    restored.push(k);
  }
  return restored;
}

export interface HostSnapshot {
  sysctls: Record<string, string>;
  links: string[];
  /** iptables-save (nft and legacy backends) and `nft list ruleset`, rule lines only. */
  firewall: string[];
  netns: string[];
  paths: Record<string, boolean>;
  /** Mount points that name a node, the kubelet's dir or a netns bind mount. */
  mounts: string[];
  /** PIDs whose root directory is a node's (they were started inside one). */
  nodeProcesses: string[];
  /** v1 controllers bound to a hierarchy (a hierarchy the node created and left busy stays bound). */
  cgroupHierarchies: string[];
}

// Not /run/containerd: the node tier's own containerd and runsc use it on the host.
const HOST_PATHS = ["/var/run/netns", "/var/log/containers", "/var/log/pods", "/var/lib/kubelet", "/var/lib/cni", "/etc/cni/net.d"];

/** Runs a shell script with the node rootfs's tools (chrooted, private mount namespace with /proc), synchronously. */
function inRootfsSync(rootfs: string, script: string): string {
  return execFileSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", `mount -t proc proc ${rootfs}/proc && exec chroot ${rootfs} sh -s`], { input: script, encoding: "utf8", maxBuffer: 32 << 20 });
}

/**
 * Undoes what a node did to the shared network namespace that pod teardown does not: the CNI
 * bridge, the KUBE-* and CNI-* chains (portmap's, the kubelet's canaries, kube-proxy's if it
 * could not clean up) and the rules that jump to them; nftables tables that did not exist before
 * (iptables-nft's nat/filter/mangle) go entirely. Synchronous, so an exit hook can run it.
 */
export function restoreHostNetwork(rootfs: string, before: HostSnapshot): void {
  // "table ip nat {" -> "ip nat"
  const hadTables = before.firewall.filter((l) => l.startsWith("table ")).map((l) => l.replace(/^table\s+/, "").replace(/\s*\{$/, ""));
  const script = [
    before.links.includes("cni0") ? "" : "ip link del cni0 2>/dev/null || true",
    "for v in iptables ip6tables; do for t in $($v-save | sed -n 's/^\\*//p'); do $v-save -t $t | grep -Ev '(^:|-A |-j |-g )(KUBE-|CNI-)' | $v-restore -T $t; done; done",
    `keep='|${hadTables.join("|")}|'`,
    `nft list tables | while read -r _ fam name; do case "$keep" in *"|$fam $name|"*) ;; *) nft delete table "$fam" "$name" ;; esac; done`,
    "",
  ].join("\n");
  inRootfsSync(rootfs, script);
}

/**
 * Lists the firewall with the node rootfs's own tools (the host has no iptables): chrooted, in a
 * private mount namespace with /proc, so nothing is written into the cached rootfs.
 */
async function firewall(rootfs: string): Promise<string[]> {
  const script = `mount -t proc proc ${rootfs}/proc && chroot ${rootfs} sh -c 'iptables-nft-save; ip6tables-nft-save; iptables-legacy-save; ip6tables-legacy-save; nft list ruleset' 2>&1`;
  const { stdout } = await run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { maxBuffer: 32 << 20 });
  // Comments carry timestamps; counters change with traffic.
  return stdout
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#"))
    .map((l) => l.replace(/\[\d+:\d+\]/g, "[]").replace(/counter packets \d+ bytes \d+/g, "counter"));
}

export async function snapshotHost(rootfs: string): Promise<HostSnapshot> {
  const { stdout: links } = await run("ip", ["-o", "link", "show"]);
  const nodeProcesses: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const root = readlinkSync(`/proc/${pid}/root`);
      if (root.includes("sandbox-operator-node-")) nodeProcesses.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim()}`);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return {
    sysctls: readSysctls(),
    links: links.split("\n").filter(Boolean).map((l) => l.split(":")[1]!.trim().split("@")[0]!),
    firewall: await firewall(rootfs),
    netns: existsSync("/var/run/netns") ? readdirSync("/var/run/netns") : [],
    paths: Object.fromEntries(HOST_PATHS.map((p) => [p, existsSync(p)])),
    mounts: readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[4] ?? "")
      .filter((m) => /sandbox-operator-node-|\/var\/lib\/kubelet|\/run\/netns/.test(m)),
    nodeProcesses,
    cgroupHierarchies: readFileSync("/proc/cgroups", "utf8")
      .split("\n")
      .slice(1)
      .map((l) => l.split("\t"))
      .filter((f) => f[1] && f[1] !== "0")
      .map((f) => f[0]!),
  };
}

/** Human-readable differences between two snapshots (empty when the host is as it was). */
export function diffHost(before: HostSnapshot, after: HostSnapshot): string[] {
  const out: string[] = [];
  const list = (name: string, a: string[], b: string[]) => {
    const added = b.filter((x) => !a.includes(x));
    const removed = a.filter((x) => !b.includes(x));
    if (added.length) out.push(`${name} added: ${added.join(" | ")}`);
    if (removed.length) out.push(`${name} removed: ${removed.join(" | ")}`);
  };
  for (const [k, v] of Object.entries(before.sysctls)) if (after.sysctls[k] !== v) out.push(`sysctl ${k}: ${v} -> ${after.sysctls[k]}`);
  list("links", before.links, after.links);
  list("firewall", before.firewall, after.firewall);
  list("/var/run/netns", before.netns, after.netns);
  for (const [p, v] of Object.entries(before.paths)) if (after.paths[p] !== v) out.push(`${p}: ${v ? "existed, now gone" : "created"}`);
  list("mounts", before.mounts, after.mounts);
  list("processes in a node", before.nodeProcesses, after.nodeProcesses);
  list("cgroup hierarchies", before.cgroupHierarchies, after.cgroupHierarchies);
  return out;
}
