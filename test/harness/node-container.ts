// A node container for the cluster tier: systemd as PID 1 in its own PID, mount, UTS, IPC and
// cgroup namespaces, the host's network namespace, an overlay over the cached rootfs (docs/adr/0003).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { onExit } from "./exit-hooks.js";

const run = promisify(execFile);

export interface Bind {
  /** Host path (file or directory). */
  host: string;
  /** Absolute path inside the node. */
  node: string;
  readOnly?: boolean;
}

export interface NodeContainerOptions {
  /** Hostname inside the node (and the Kubernetes node name). */
  name: string;
  /** The cached rootfs (ensureNodeRootfs); overlaid read-only, never written. */
  rootfs: string;
  /** Directories or files bound into the node (harness binaries, certificates). */
  binds?: Bind[];
  /** Files written into the node before it boots: absolute node path -> content (mode 0644; 0755 for .sh and under /usr/local/bin). */
  files?: Record<string, string>;
  /** Node paths that must not live on the overlay (containerd's snapshots are overlays themselves). */
  realDirs?: string[];
}

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export interface NodeContainer {
  name: string;
  /** The run directory on the host (overlay upper, real dirs, console log). */
  dir: string;
  /** Host PID of the node's PID 1 (systemd). */
  pid: number;
  /** A node path as seen from the host, through /proc/<pid>/root. */
  hostPath(nodePath: string): string;
  /** Runs a command inside the node's mount, PID, UTS, IPC and cgroup namespaces. */
  exec(cmd: string[], opts?: { input?: string; timeoutMs?: number }): Promise<ExecResult>;
  systemctl(...args: string[]): Promise<ExecResult>;
  /** The unit's journal (last lines), for failure messages. */
  journal(unit: string, lines?: number): Promise<string>;
  /** systemd's console output (boot messages). */
  console(): string;
  /** Halts systemd (SIGRTMIN+3), kills what is left, removes cgroups and the run directory. */
  stop(): Promise<void>;
}

const HIERARCHY_ROOT = "/sys/fs/cgroup";
/** Blocks for up to `ms` until `pid` is gone (exit hooks cannot await). */
function waitGoneSync(pid: number, ms: number): void {
  const until = Date.now() + ms;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (alive(pid) && Date.now() < until) Atomics.wait(cell, 0, 0, 20);
}

/** The v1 controllers and named hierarchies this host mounts, with the cgroup this process is in. */
function hierarchies(): Array<{ mount: string; mountOpts: string; fstype: "cgroup" | "cgroup2"; parent: string }> {
  const mine = new Map<string, string>();
  for (const line of readFileSync("/proc/self/cgroup", "utf8").trim().split("\n")) {
    const [, ctrls, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (ctrls !== undefined && path !== undefined) mine.set(ctrls, path);
  }
  const out: Array<{ mount: string; mountOpts: string; fstype: "cgroup" | "cgroup2"; parent: string }> = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").trim().split("\n")) {
    const [pre, post] = line.split(" - ");
    const mount = pre?.split(" ")[4] ?? "";
    const [fstype, , superOpts = ""] = post?.split(" ") ?? [];
    if (!mount.startsWith(`${HIERARCHY_ROOT}/`)) continue;
    if (fstype === "cgroup2") {
      out.push({ mount, mountOpts: "", fstype, parent: mine.get("") ?? "/" });
    } else if (fstype === "cgroup") {
      const opts = superOpts.split(",").filter((o) => o !== "rw" && o !== "ro" && !o.startsWith("release_agent") && o !== "clone_children");
      const key = opts.filter((o) => o !== "none").join(",");
      const parent = mine.get(key) ?? [...mine.entries()].find(([k]) => k.split(",").sort().join(",") === key.split(",").sort().join(","))?.[1] ?? "/";
      out.push({ mount, mountOpts: opts.join(","), fstype, parent });
    }
  }
  if (out.length === 0) throw new Error(`no cgroup hierarchies under ${HIERARCHY_ROOT}: the node container needs cgroups`);
  return out;
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The script run as PID 1 of the new namespaces: mounts the node's filesystems, pivots, execs systemd. */
function stage2(dir: string, opts: NodeContainerOptions, hs: ReturnType<typeof hierarchies>): string {
  const r = join(dir, "merged");
  const lines = [
    "set -eu",
    `R=${sh(r)}`,
    `mount -t overlay overlay -o lowerdir=${sh(opts.rootfs)},upperdir=${sh(join(dir, "upper"))},workdir=${sh(join(dir, "work"))} "$R"`,
  ];
  for (const d of opts.realDirs ?? []) lines.push(`mkdir -p "$R"${sh(d)}`, `mount --bind ${sh(join(dir, "real", d))} "$R"${sh(d)}`);
  for (const b of opts.binds ?? []) {
    const isDir = !existsSync(b.host) || readdirSafe(b.host) !== null;
    lines.push(isDir ? `mkdir -p "$R"${sh(b.node)}` : `mkdir -p "$R"${sh(dirname(b.node))}; [ -e "$R"${sh(b.node)} ] || touch "$R"${sh(b.node)}`);
    lines.push(`mount --rbind ${sh(b.host)} "$R"${sh(b.node)}`);
    if (b.readOnly) lines.push(`mount -o remount,bind,ro "$R"${sh(b.node)}`);
  }
  lines.push(
    `mount -t proc proc "$R/proc"`,
    // Read-only sysfs: nothing in the node (udev) should reconfigure the host's devices.
    `mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"`,
    `mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs "$R/sys/fs/cgroup"`,
  );
  for (const h of hs) {
    const m = `"$R"${sh(h.mount)}`;
    lines.push(`mkdir -p ${m}`, h.fstype === "cgroup2" ? `mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 ${m}` : `mount -t cgroup -o nosuid,nodev,noexec,${h.mountOpts} cgroup ${m}`);
  }
  // Symlinks like cpu,cpuacct -> cpu the host may have: systemd looks hierarchies up by controller name.
  for (const l of readdirSync(HIERARCHY_ROOT)) {
    const p = join(HIERARCHY_ROOT, l);
    if (!hs.some((h) => h.mount === p)) lines.push(`[ -e "$R"${sh(p)} ] || ln -s ${sh(readlinkSafe(p))} "$R"${sh(p)} 2>/dev/null || true`);
  }
  lines.push(
    `mount -t tmpfs -o mode=755,nosuid tmpfs "$R/dev"`,
    `cd "$R/dev"`,
    "mknod -m 666 null c 1 3; mknod -m 666 zero c 1 5; mknod -m 666 full c 1 7; mknod -m 666 random c 1 8; mknod -m 666 urandom c 1 9; mknod -m 666 tty c 5 0",
    // The kubelet's OOM watcher reads the kernel log.
    "mknod -m 600 kmsg c 1 11",
    "ln -s /proc/self/fd fd; ln -s /proc/self/fd/0 stdin; ln -s /proc/self/fd/1 stdout; ln -s /proc/self/fd/2 stderr; ln -s /proc/kcore core",
    "mkdir pts shm mqueue; mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts pts; ln -s pts/ptmx ptmx",
    "mount -t tmpfs -o mode=1777,nosuid,nodev shm shm; mount -t mqueue mqueue mqueue",
    `touch console; mount --bind ${sh(join(dir, "console.log"))} console`,
    `mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"`,
    `mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"`,
    `cd "$R"`,
    "mkdir -p .oldroot",
    "pivot_root . .oldroot",
    "cd /",
    "umount -l /.oldroot",
    "rmdir /.oldroot",
    // A real node's mounts are shared, so mountPropagation (HostToContainer, Bidirectional) works.
    "mount --make-rshared /",
    "exec env -i container=sandbox-operator-node TERM=dumb PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd systemd.unified_cgroup_hierarchy=0 --log-target=console --show-status=false </dev/console >/dev/console 2>&1",
  );
  return lines.join("\n") + "\n";
}

function readdirSafe(p: string): string[] | null {
  try {
    return readdirSync(p);
  } catch {
    return null;
  }
}

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return p;
  }
}

async function waitUntil(what: string, probe: () => Promise<boolean> | boolean, timeoutMs: number, onFail: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(probe()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms\n${onFail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Child PID of `parent` (unshare --fork's child is the node's PID 1). */
function childOf(parent: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${parent}/task/${parent}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSafe(`/proc/${pid}/stat`));
function readFileSafe(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

/** Removes a cgroup directory tree bottom-up (only empty cgroups can be removed). */
function removeCgroup(path: string): void {
  for (const e of readdirSafe(path) ?? []) {
    const child = join(path, e);
    if (existsSync(join(child, "cgroup.procs"))) removeCgroup(child);
  }
  try {
    rmdirSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`cannot remove cgroup ${path}: ${(e as Error).message} (processes left: ${readFileSafe(join(path, "cgroup.procs")).trim() || "none"})`, { cause: e });
  }
}

export async function startNodeContainer(opts: NodeContainerOptions): Promise<NodeContainer> {
  const dir = mkdtempSync(join(tmpdir(), `sandbox-operator-node-`));
  for (const d of ["upper", "work", "merged", "real"]) mkdirSync(join(dir, d));
  for (const d of opts.realDirs ?? []) mkdirSync(join(dir, "real", d), { recursive: true });
  writeFileSync(join(dir, "console.log"), "");
  const files: Record<string, string> = {
    "/etc/hostname": `${opts.name}\n`,
    "/etc/hosts": `127.0.0.1 localhost\n127.0.1.1 ${opts.name}\n::1 localhost ip6-localhost ip6-loopback\n`,
    // A node has its own machine ID (the kubelet reports it); an empty file would mean "first boot".
    "/etc/machine-id": `${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}\n`,
    "/etc/resolv.conf": readFileSafe("/etc/resolv.conf"),
    ...opts.files,
  };
  for (const [p, content] of Object.entries(files)) {
    const hp = join(dir, "upper", p);
    mkdirSync(dirname(hp), { recursive: true });
    rmSync(hp, { force: true });
    writeFileSync(hp, content);
    if (p.endsWith(".sh") || p.startsWith("/usr/local/bin/")) chmodSync(hp, 0o755);
  }

  const hs = hierarchies();
  const cgName = `sandbox-operator-${opts.name}-${process.pid}`;
  const cgroups = hs.map((h) => join(h.mount, h.parent, cgName));
  for (const [i, cg] of cgroups.entries()) {
    mkdirSync(cg, { recursive: true });
    if (hs[i]!.mountOpts.split(",").includes("cpuset")) {
      // A new cpuset cgroup starts with no CPUs and no memory nodes: nothing could run in it.
      for (const f of ["cpuset.cpus", "cpuset.mems"]) writeFileSync(join(cg, f), readFileSync(join(dirname(cg), f)));
      writeFileSync(join(cg, "cgroup.clone_children"), "1");
    }
  }
  writeFileSync(join(dir, "stage2.sh"), stage2(dir, opts, hs));
  // Join the node's cgroups, then make the namespaces; the cgroup namespace's root is the node cgroup.
  const launcher = [...cgroups.map((cg) => `echo $$ > ${sh(join(cg, "cgroup.procs"))}`), `exec unshare --pid --fork --mount --uts --ipc --cgroup --propagation private /bin/sh ${sh(join(dir, "stage2.sh"))}`].join("\n");
  writeFileSync(join(dir, "launch.sh"), launcher + "\n");
  const log = openSync(join(dir, "launch.log"), "a");
  const launch: ChildProcess = spawn("/bin/sh", [join(dir, "launch.sh")], { stdio: ["ignore", log, log] });
  closeSync(log);
  let pid = 0;
  const killNow = () => {
    if (pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    launch.kill("SIGKILL");
  };
  const unhook = onExit(() => {
    killNow();
    if (pid) waitGoneSync(pid, 3_000);
    for (const cg of cgroups) {
      try {
        removeCgroup(cg);
      } catch {
        // a process still dying; nothing more an exit hook can do
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const consoleText = () => readFileSafe(join(dir, "console.log"));
  const diag = () => `--- launch.log ---\n${readFileSafe(join(dir, "launch.log"))}\n--- console (tail) ---\n${consoleText().split("\n").slice(-40).join("\n")}`;

  const nsenter = (cmd: string[]) => ["--target", String(pid), "--mount", "--pid", "--uts", "--ipc", "--cgroup", "--", "/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", ...cmd];
  const node: NodeContainer = {
    name: opts.name,
    dir,
    get pid() {
      return pid;
    },
    hostPath: (p) => join(`/proc/${pid}/root`, p),
    async exec(cmd, o = {}) {
      return new Promise<ExecResult>((resolve, reject) => {
        const child = execFile("nsenter", nsenter(cmd), { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`in node ${opts.name}: ${cmd.join(" ")}: exit ${err.code ?? err.signal}${err.killed ? " (killed: timeout)" : ""}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`, { cause: err }));
          else resolve({ stdout, stderr });
        });
        if (o.input !== undefined) child.stdin?.end(o.input);
      });
    },
    systemctl: (...args) => node.exec(["systemctl", ...args]),
    async journal(unit, lines = 60) {
      return (await node.exec(["journalctl", "--no-pager", "-o", "cat", "-n", String(lines), "-u", unit]).catch((e: Error) => ({ stdout: e.message }))).stdout;
    },
    console: consoleText,
    async stop() {
      if (pid && alive(pid)) {
        // SIGRTMIN+3 asks systemd to halt: units stop in order, then PID 1 exits.
        await run("kill", [`-RTMIN+3`, String(pid)]).catch(() => undefined);
        const deadline = Date.now() + 20_000;
        while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      }
      // PID 1 gone takes every process of the PID namespace with it; SIGKILL covers a hung halt.
      killNow();
      const exited = launch.exitCode !== null || launch.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => launch.once("exit", () => r()));
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      unhook();
      const errors: string[] = [];
      for (const cg of cgroups) {
        const deadline = Date.now() + 10_000;
        for (;;) {
          try {
            removeCgroup(cg);
            break;
          } catch (e) {
            if (Date.now() > deadline) {
              errors.push((e as Error).message);
              break;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
      rmSync(dir, { recursive: true, force: true });
      if (errors.length) throw new Error(`node ${opts.name} left cgroups behind:\n${errors.join("\n")}`);
    },
  };
  try {
    await waitUntil("node PID 1 started", () => (pid = childOf(launch.pid!) ?? 0) > 0, 10_000, diag);
    // PID 1 is the stage2 shell until it execs systemd.
    await waitUntil("systemd is PID 1 of the node", () => readFileSafe(`/proc/${pid}/comm`).trim() === "systemd", 15_000, diag);
    await waitUntil(
      "systemd reached multi-user (is-system-running)",
      async () => {
        const out = await run("nsenter", nsenter(["systemctl", "is-system-running"])).then((r) => r.stdout, (e: { stdout?: string }) => e.stdout ?? "");
        return ["running", "degraded"].includes(out.trim());
      },
      60_000,
      diag,
    );
  } catch (e) {
    const text = diag();
    await node.stop().catch(() => undefined);
    throw new Error(`node container ${opts.name} did not boot: ${(e as Error).message}\n${text}`, { cause: e });
  }
  return node;
}
