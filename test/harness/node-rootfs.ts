// The cluster tier's node root filesystem: Debian bookworm from the mirror apt already uses
// (debootstrap minbase + systemd), built once into the cache, keyed by what goes into it.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE_DIR, runWithProgress } from "./binaries.js";

export const SUITE = "bookworm";

/**
 * What a node runs besides the harness's own binaries: systemd as init, D-Bus (systemctl, the
 * kubelet's systemd cgroup driver), Debian's containerd 1.6 + runc, iptables/nftables/conntrack for
 * kube-proxy and the CNI plugins, and the tools a node agent or a debugging human expects.
 */
export const PACKAGES = ["systemd", "systemd-sysv", "dbus", "containerd", "runc", "conmon", "libsqlite3-0", "iptables", "nftables", "conntrack", "iproute2", "procps", "kmod", "util-linux", "mount"];

/**
 * Units a container node must not run. systemd-sysctl would write Debian's sysctl defaults into the
 * host's kernel (the node shares the host network namespace, and most kernel.* keys are global);
 * the gettys fight over the console; the timers only cost CPU during tests.
 */
const MASKED_UNITS = ["systemd-sysctl.service", "console-getty.service", "getty@.service", "serial-getty@.service", "apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount", "systemd-modules-load.service", "e2scrub_reap.service"];

/** Bump when the post-debootstrap tweaks change, so cached rootfs dirs are rebuilt. */
const TWEAKS_VERSION = 1;

/** The Debian mirror apt on this machine uses (the network only lets package mirrors through). */
export function debianMirror(): string {
  const candidates = ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"];
  for (const f of candidates) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, "utf8");
    // deb822: "URIs: http://deb.debian.org/debian" next to "Suites: bookworm ..."
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && suites.includes(SUITE)) return uri;
    }
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${SUITE}\\s`, "m").exec(text);
    if (line?.[1]) return line[1];
  }
  throw new Error(`no Debian ${SUITE} mirror found in ${candidates.join(" or ")}: the node rootfs is built from the mirror apt uses`);
}

function cacheKey(mirror: string): string {
  return createHash("sha256").update(JSON.stringify({ SUITE, mirror, PACKAGES, MASKED_UNITS, TWEAKS_VERSION })).digest("hex").slice(0, 12);
}

/** Returns the cached rootfs directory (read-only by convention: nodes overlay it), building it on first use. */
export async function ensureNodeRootfs(): Promise<string> {
  const mirror = debianMirror();
  const base = join(CACHE_DIR, "rootfs");
  const dir = join(base, `${SUITE}-${cacheKey(mirror)}`);
  if (existsSync(join(dir, ".complete"))) return dir;
  if (!existsSync("/usr/sbin/debootstrap")) throw new Error("debootstrap is missing: apt-get install debootstrap (or run scripts/setup.sh test)");
  mkdirSync(base, { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  process.stderr.write(`building the node rootfs (debootstrap ${SUITE} from ${mirror}) into ${dir} (first time only; about a minute)\n`);
  try {
    await runWithProgress("debootstrap", "/usr/sbin/debootstrap", ["--variant=minbase", `--include=${PACKAGES.join(",")}`, SUITE, tmp, mirror], { cwd: base, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    tweak(tmp);
    writeFileSync(join(tmp, ".complete"), `${new Date().toISOString()}\n`);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** One-time changes that make a debootstrapped tree boot as a container node. */
function tweak(root: string): void {
  const etc = (p: string) => join(root, "etc", p);
  for (const unit of MASKED_UNITS) {
    const p = etc(join("systemd", "system", unit));
    rmSync(p, { force: true });
    symlinkSync("/dev/null", p);
  }
  // Debian enables containerd 1.6 at install; the node decides per run which containerd runs.
  rmSync(etc("systemd/system/multi-user.target.wants/containerd.service"), { force: true });
  // Journal to memory only, forwarded to the console file the harness reads.
  mkdirSync(etc("systemd/journald.conf.d"), { recursive: true });
  writeFileSync(etc("systemd/journald.conf.d/node.conf"), "[Journal]\nStorage=volatile\nForwardToConsole=no\n");
  writeFileSync(etc("fstab"), "");
  rmSync(etc("machine-id"), { force: true });
  writeFileSync(etc("machine-id"), "");
  // No apt caches in the image the nodes overlay.
  for (const d of [join(root, "var/cache/apt/archives"), join(root, "var/lib/apt/lists")]) {
    for (const f of readdirSync(d)) if (f.endsWith(".deb") || f.endsWith("_Packages")) rmSync(join(d, f), { force: true });
  }
}
