// Starts a private CRI-O (own storage root, runroot, socket, config dir under a host root; Debian's
// conmon and runc) for node tests, with images from a loopback registry, restartable by a script.
import { execFile, execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CriClient, waitCriReady } from "../../src/agent/cri/client.js";
import { ensureBinary } from "./binaries.js";
import { killTree, removePodSandboxes } from "./containerd.js";
import { buildImageArchive, TEST_IMAGE } from "./images.js";
import { startRegistry, type Registry } from "./registry.js";

const run = promisify(execFile);

/** The pause image CRI-O 1.34 asks for by default. */
export const CRIO_PAUSE_IMAGE = "registry.k8s.io/pause:3.10";
/** Where CRI-O packages (1.30 and later) put their base config: a drop-in, no crio.conf. */
export const CRIO_BASE_DROPIN = "/etc/crio/crio.conf.d/10-crio.conf";
const DEBIAN_BINARIES = ["/usr/bin/conmon", "/usr/sbin/runc"];
/**
 * Host paths outside this test's dir that our gVisor handlers make CRI-O and runsc write: the IO
 * fifos under the handlers' runtime_root (/run/runsc), which CRI-O leaves some of, and the shim's
 * runsc root for CRI-O's namespace ("default"), where runsc bind-mounts a null-netns once.
 * stop() removes what appeared there while this CRI-O ran.
 */
const GVISOR_HOST_DIRS = ["/run/runsc/crio/fifo/io", "/run/containerd/runsc/default"];
const entries = (d: string) => (existsSync(d) ? readdirSync(d).map((e) => join(d, e)) : []);

/**
 * The base config: what a CRI-O package ships (runc as the default runtime — Debian's crun 1.8.1
 * refuses the OCI spec version CRI-O 1.34 writes — and conmon as its monitor),
 * with every path moved under `dir`, and what this machine needs: cgroupfs (PID 1 is not systemd,
 * so conmon goes in the pod's cgroup), no NRI (its socket is machine-wide), no irqbalance edits,
 * no hostPort mapping (it needs iptables or nft; verification pods use the host network).
 */
export function crioBaseConfig(dir: string, socket: string, pinns: string): string {
  return `# CRI-O base configuration of a sandbox-operator node test (test/harness/crio.ts).
[crio]
root = "${dir}/storage"
runroot = "${dir}/runroot"
storage_driver = "overlay"
log_dir = "${dir}/pods"
version_file = "${dir}/run/version"
version_file_persist = "${dir}/lib/version"
clean_shutdown_file = "${dir}/lib/clean.shutdown"

[crio.api]
listen = "${socket}"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
pinns_path = "${pinns}"
namespaces_dir = "${dir}/ns"
container_exits_dir = "${dir}/run/exits"
container_attach_socket_dir = "${dir}/run"
irqbalance_config_file = ""
irqbalance_config_restore_file = "disable"
hooks_dir = []
cdi_spec_dirs = []
disable_hostport_mapping = true

[crio.runtime.runtimes.runc]
runtime_path = "/usr/sbin/runc"
runtime_type = "oci"
runtime_root = "${dir}/runc"
monitor_path = "/usr/bin/conmon"
monitor_cgroup = "pod"

[crio.image]
pause_image = "${CRIO_PAUSE_IMAGE}"
# The image's own command: our pause image (test/harness/images.ts) has no /pause binary.
pause_command = ""
signature_policy = "${dir}/policy.json"

[crio.network]
network_dir = "${dir}/cni/net.d"
plugin_dirs = ["${dir}/cni/bin"]

[crio.nri]
enable_nri = false
`;
}

export interface CrioOptions {
  /** The host root the agent works on; the base config lives at <hostRoot>/etc/crio/crio.conf.d/10-crio.conf. */
  hostRoot: string;
  /**
   * More name prefixes (for example "localhost", as the shipped payload references start) that
   * registries.conf sends to this CRI-O's loopback registry, as an air-gapped node's mirror config
   * does; push images there as `<prefix>/<repo>` (Crio.registry).
   */
  mirrorPrefixes?: string[];
}

export interface Crio {
  dir: string;
  socket: string;
  /** The loopback registry this CRI-O pulls every image from (registries.conf). */
  registry: Registry;
  /** <hostRoot>/etc/crio/crio.conf.d, CRI-O's --config-dir. */
  configDir: string;
  /** Script that restarts this CRI-O (for the agent's --restart-strategy=command). */
  restartScript: string;
  restart(): Promise<void>;
  /** How many times restartScript ran. */
  restarts(): number;
  cri(): CriClient;
  log(): string;
  stop(): Promise<void>;
}

const live = new Set<Crio>();
process.on("exit", () => {
  for (const c of live) killTree(c.dir);
});

/** registries.conf sending both images' names to the loopback registry over plain HTTP. */
function registriesConf(registry: Registry, extra: readonly string[]): string {
  const entry = (prefix: string) => `[[registry]]\nprefix = "${prefix}"\nlocation = "${registry.host}/${prefix}"\ninsecure = true\n`;
  return [`unqualified-search-registries = []`, ``, ...["registry.k8s.io", TEST_IMAGE.replace(/\/[^/]*$/, ""), ...extra].map(entry)].join("\n");
}

/** Pushes the pause and test images to the registry and pulls them into CRI-O through CRI, as a node pulls. */
async function pullImages(registry: Registry, socket: string): Promise<void> {
  const archive = await buildImageArchive();
  for (const ref of [CRIO_PAUSE_IMAGE, TEST_IMAGE]) {
    const [repository, tag] = [ref.slice(0, ref.lastIndexOf(":")), ref.slice(ref.lastIndexOf(":") + 1)];
    await registry.push(archive, repository, { ref, tag });
  }
  const cri = new CriClient(socket, 60_000);
  try {
    for (const ref of [CRIO_PAUSE_IMAGE, TEST_IMAGE]) await cri.pullImage(ref);
  } finally {
    cri.close();
  }
}

export async function startCrio(opts: CrioOptions): Promise<Crio> {
  for (const b of DEBIAN_BINARIES) if (!existsSync(b)) throw new Error(`${b} is missing: apt-get install conmon runc (or run scripts/setup.sh test)`);
  const crio = await ensureBinary("crio");
  const pinns = await ensureBinary("pinns");
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-crio-"));
  const socket = join(dir, "crio.sock");
  const configDir = join(opts.hostRoot, "etc/crio/crio.conf.d");
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(opts.hostRoot, CRIO_BASE_DROPIN), crioBaseConfig(dir, socket, pinns));
  writeFileSync(join(dir, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  mkdirSync(join(dir, "registries.conf.d"));
  const hostBefore = new Set(GVISOR_HOST_DIRS.flatMap(entries));
  const registry = await startRegistry();
  writeFileSync(join(dir, "registries.conf"), registriesConf(registry, opts.mirrorPrefixes ?? []));
  const path = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].join(":");
  const start = join(dir, "start.sh");
  // No crio.conf: --config names an empty file so the host's /etc/crio/crio.conf is never read.
  writeFileSync(join(dir, "crio.conf"), "");
  writeFileSync(
    start,
    `#!/bin/sh
# Starts this test's CRI-O detached (its own session), so conmon and shims outlive a restart as on a host.
cd ${dir}
PATH=${path} setsid ${crio} --config ${dir}/crio.conf --config-dir ${configDir} --registries-conf ${dir}/registries.conf --registries-conf-dir ${dir}/registries.conf.d --log-level info >>${dir}/crio.log 2>&1 </dev/null &
echo $! > ${dir}/crio.pid
`,
  );
  const restartScript = join(dir, "restart.sh");
  const stopScript = join(dir, "stop.sh");
  const lock = join(dir, "restart.lock");
  writeFileSync(
    stopScript,
    `#!/bin/sh
# Stops this test's CRI-O: SIGTERM, wait for exit.
pid=$(cat ${dir}/crio.pid)
kill -TERM "$pid" 2>/dev/null || true
while [ -e /proc/$pid ] && ! grep -q ') Z' /proc/$pid/stat 2>/dev/null; do sleep 0.05; done
`,
  );
  // One restart at a time (flock -o: CRI-O does not inherit the lock). Counts restarts.
  writeFileSync(restartScript, `#!/bin/sh\nset -e\nexec flock -o ${lock} sh -c 'date +%s.%N >> ${dir}/restarts.log; ${stopScript}; exec ${start}'\n`);
  for (const s of [start, stopScript, restartScript]) chmodSync(s, 0o755);
  execFileSync(start);
  const c: Crio = {
    dir,
    socket,
    registry,
    configDir,
    restartScript,
    async restart() {
      await run(restartScript);
      await waitCriReady(socket, 30_000);
    },
    restarts: () => (existsSync(join(dir, "restarts.log")) ? readFileSync(join(dir, "restarts.log"), "utf8").trim().split("\n").filter(Boolean).length : 0),
    cri: () => new CriClient(socket),
    log: () => (existsSync(join(dir, "crio.log")) ? readFileSync(join(dir, "crio.log"), "utf8") : ""),
    async stop() {
      live.delete(c);
      await removePodSandboxes(socket, 10_000);
      await run(stopScript).catch(() => undefined);
      killTree(dir);
      for (const p of GVISOR_HOST_DIRS.flatMap(entries).filter((p) => !hostBefore.has(p))) {
        if (readFileSync("/proc/self/mountinfo", "utf8").includes(` ${p} `)) execFileSync("umount", [p]);
        rmSync(p, { recursive: true, force: true });
      }
      await registry.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(c);
  try {
    await waitCriReady(socket, 60_000);
    await pullImages(registry, socket);
  } catch (e) {
    const log = c.log().split("\n").slice(-30).join("\n");
    await c.stop();
    throw new Error(`CRI-O did not start: ${(e as Error).message}\n--- crio.log (tail) ---\n${log}`, { cause: e });
  }
  return c;
}
