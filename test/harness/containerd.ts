// Starts a private containerd (own root, state, socket, config under a host root) for node tests
// and the demo, restartable through a script the agent's `command` restart strategy can call.
import { execFile, execFileSync, spawn } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { CriClient, waitCriReady } from "../../src/agent/cri/client.js";
import { ensureBinary } from "./binaries.js";
import { importImages } from "./images.js";

const run = promisify(execFile);

/** Debian's /etc/containerd/config.toml as shipped by containerd 1.6.20~ds1-1+deb12u3. */
export const DEBIAN_CONFIG = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
`;

/**
 * Settings this machine needs that a normal host would not: no CAP_SYS_RESOURCE (so OOM scores
 * cannot be lowered) and no AppArmor. Inserted as the first keys of the CRI plugin table.
 */
export const ENV_CRI_KEYS = ["restrict_oom_score_adj = true", "disable_apparmor = true"];

/** Debian's default config, made fit for a private instance here (see ENV_CRI_KEYS); opt path moved under `dir`. */
export function debianConfig(dir: string): string {
  return DEBIAN_CONFIG.replace(
    `  [plugins."io.containerd.grpc.v1.cri"]\n`,
    `  [plugins."io.containerd.grpc.v1.cri"]\n${ENV_CRI_KEYS.map((k) => `    ${k}\n`).join("")}`,
  ).replace(`path = "/var/lib/containerd/opt"`, `path = "${dir}/opt"`);
}

/** A containerd 2.x config (version 3) with the same environment settings. */
export function v3Config(dir: string): string {
  return [
    `version = 3`,
    ``,
    `[plugins."io.containerd.cri.v1.runtime"]`,
    ...ENV_CRI_KEYS.map((k) => `  ${k}`),
    `[plugins."io.containerd.internal.v1.opt"]`,
    `  path = "${dir}/opt"`,
    ``,
  ].join("\n");
}

export interface ContainerdOptions {
  version: "1.6" | "2";
  /** The host root the agent works on; the config lives at <hostRoot>/etc/containerd/config.toml. */
  hostRoot: string;
  /** config.toml content; null = no config.toml at all; default = Debian's (1.6) or a minimal v3 (2). */
  config?: string | null;
  /** Directories put first on containerd's PATH (where it looks for shims). */
  extraPath?: string[];
  /** Import the pause and test images (default true). */
  images?: boolean;
  /** --address: default <its own dir>/containerd.sock; give a path under hostRoot to serve the socket where a node would. */
  socket?: string;
  /** --config as a host path (under hostRoot), default /etc/containerd/config.toml; k3s-like nodes use another. */
  hostConfigPath?: string;
  /**
   * A shell command run before every start (first start and each restart), as a distribution's
   * own start does: k3s rendering config.toml from its template (test/harness/distro-stand-ins.ts).
   */
  generate?: string;
}

export interface Containerd {
  version: "1.6" | "2";
  dir: string;
  socket: string;
  configPath: string;
  /** Script that restarts this containerd (for the agent's --restart-strategy=command). */
  restartScript: string;
  bin: { containerd: string; ctr: string; shimDir: string };
  restart(): Promise<void>;
  /**
   * What k3s or an admin does behind the agent's back: rewrite files, then restart containerd, all
   * under the restart lock, so an agent restart in between waits instead of starting a second containerd.
   */
  regenerate(mutate: () => void): Promise<void>;
  /** How many times restartScript ran. */
  restarts(): number;
  cri(): CriClient;
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<Containerd>();
process.on("exit", () => {
  for (const c of live) killTree(c.dir);
});

async function binaries(version: "1.6" | "2") {
  if (version === "1.6") {
    for (const b of ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2"]) {
      if (!existsSync(b)) throw new Error(`${b} is missing: install Debian's containerd (apt-get install containerd, or run scripts/setup.sh test)`);
    }
    return { containerd: "/usr/bin/containerd", ctr: "/usr/bin/ctr", shimDir: "/usr/bin" };
  }
  const containerd = await ensureBinary("containerd2");
  const shim = await ensureBinary("containerd2-shim-runc-v2");
  const ctr = await ensureBinary("ctr2");
  return { containerd, ctr, shimDir: dirname(shim) };
}

export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  for (const b of ["/usr/sbin/runc", "/usr/bin/runc"]) if (existsSync(b)) break;
  if (!existsSync("/usr/sbin/runc") && !existsSync("/usr/bin/runc")) throw new Error("runc is missing: apt-get install runc (or run scripts/setup.sh test)");
  const bin = await binaries(opts.version);
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-ctd-"));
  const socket = opts.socket ?? join(dir, "containerd.sock");
  mkdirSync(dirname(socket), { recursive: true });
  const configPath = join(opts.hostRoot, opts.hostConfigPath ?? "/etc/containerd/config.toml");
  mkdirSync(dirname(configPath), { recursive: true });
  const config = opts.config === undefined ? (opts.version === "1.6" ? debianConfig(dir) : v3Config(dir)) : opts.config;
  if (config !== null) writeFileSync(configPath, config);
  const path = [...(opts.extraPath ?? []), bin.shimDir, "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(":");
  const start = join(dir, "start.sh");
  writeFileSync(
    start,
    `#!/bin/sh
# Starts this test's containerd detached (its own session), so shims outlive a restart as on a host.
cd ${dir}
${opts.generate ? `${opts.generate} >>${dir}/generate.log 2>&1 || { echo "generator failed: see ${dir}/generate.log" >&2; exit 1; }
` : ""}# Like a host without /etc/containerd/config.toml: built-in defaults (an explicit --config must exist).
cfg=${configPath}; [ -f "$cfg" ] || cfg=/dev/null
PATH=${path} setsid ${bin.containerd} --config "$cfg" --root ${dir}/root --state ${dir}/state --address ${socket} >>${dir}/containerd.log 2>&1 </dev/null &
echo $! > ${dir}/containerd.pid
`,
  );
  const restartScript = join(dir, "restart.sh");
  const restartLocked = join(dir, "restart-locked.sh");
  const stopScript = join(dir, "stop.sh");
  const lock = join(dir, "restart.lock");
  // One restart at a time (flock -o: containerd does not inherit the lock).
  writeFileSync(restartScript, `#!/bin/sh\nexec flock -o ${lock} ${restartLocked}\n`);
  writeFileSync(
    stopScript,
    `#!/bin/sh
# Stops this test's containerd: SIGTERM, wait for exit.
pid=$(cat ${dir}/containerd.pid)
kill -TERM "$pid" 2>/dev/null || true
while [ -e /proc/$pid ] && ! grep -q ') Z' /proc/$pid/stat 2>/dev/null; do sleep 0.05; done
`,
  );
  writeFileSync(
    restartLocked,
    `#!/bin/sh
# Restarts this test's containerd: stop, start again. Counts restarts.
set -e
date +%s.%N >> ${dir}/restarts.log
${stopScript}
exec ${start}
`,
  );
  chmodSync(start, 0o755);
  chmodSync(restartScript, 0o755);
  chmodSync(restartLocked, 0o755);
  chmodSync(stopScript, 0o755);
  execFileSync(start);
  const c: Containerd = {
    version: opts.version,
    dir,
    socket,
    configPath,
    restartScript,
    bin,
    async restart() {
      await run(restartScript);
      await waitCriReady(socket, 30_000);
    },
    async regenerate(mutate) {
      const holder = spawn("flock", ["-o", lock, "sh", "-c", "echo locked; read _"], { stdio: ["pipe", "pipe", "inherit"] });
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once("data", () => resolve());
        holder.once("exit", (code) => reject(new Error(`flock ${lock} exited ${code} before locking`)));
      });
      try {
        // Stopped while the files change, so a check in between never sees new files with the old runtime.
        appendFileSync(join(dir, "restarts.log"), `${Date.now() / 1000}\n`);
        await run(stopScript);
        mutate();
        await run(start);
      } finally {
        holder.stdin!.end("\n");
        await new Promise((r) => holder.once("exit", r));
      }
      await waitCriReady(socket, 30_000);
    },
    restarts: () => (existsSync(join(dir, "restarts.log")) ? readFileSync(join(dir, "restarts.log"), "utf8").trim().split("\n").filter(Boolean).length : 0),
    cri: () => new CriClient(socket),
    log: () => (existsSync(join(dir, "containerd.log")) ? readFileSync(join(dir, "containerd.log"), "utf8") : ""),
    async stop() {
      live.delete(c);
      // containerd may already be down; killTree cleans up below.
      await removePodSandboxes(socket, 5_000);
      killTree(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(c);
  try {
    await waitCriReady(socket, 30_000);
    if (opts.images !== false) await importImages(bin.ctr, socket);
  } catch (e) {
    const log = c.log().split("\n").slice(-30).join("\n");
    await c.stop();
    throw new Error(`containerd ${opts.version} did not start: ${(e as Error).message}\n--- containerd.log (tail) ---\n${log}`, { cause: e });
  }
  return c;
}

/** Stops and removes every pod sandbox through CRI (the CNI plugins' DEL runs); a runtime that is down is not an error. */
export async function removePodSandboxes(socket: string, timeoutMs: number): Promise<void> {
  const cri = new CriClient(socket, timeoutMs);
  try {
    for (const p of await cri.listPodSandbox()) {
      await cri.stopPodSandbox(p.id).catch(() => undefined);
      await cri.removePodSandbox(p.id).catch(() => undefined);
    }
  } catch {
    // The runtime is down: nothing it could show us to remove.
  } finally {
    cri.close();
  }
}

/** Kills every process whose command line names `dir` (containerd, its shims, runsc), then unmounts under it. */
export function killTree(dir: string): void {
  for (let round = 0; round < 2; round++) {
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      if (Number(pid) === process.pid) continue;
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        const cwd = safeReadlink(`/proc/${pid}/cwd`);
        if (cmd.includes(dir) || cwd.startsWith(dir)) process.kill(Number(pid), "SIGKILL");
      } catch {
        // The process went away meanwhile.
      }
    }
  }
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.startsWith(dir + "/"))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try {
      execFileSync("umount", ["-l", m], { stdio: "ignore" });
    } catch {
      // Already gone with a parent mount.
    }
  }
  try {
    appendFileSync(join(dir, "stopped"), "");
  } catch {
    // dir removed already
  }
}

function safeReadlink(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return "";
  }
}
