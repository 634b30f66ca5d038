// The local demo (`npm run demo`): a real control plane, containerd + runc + gVisor, the controller and
// the agent as processes; rollout, a runc and a `sandboxed` container side by side, uninstall, config restored.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { hostname, release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { SandboxConfig, SandboxNode } from "../src/api/index.js";
import { CriClient } from "../src/agent/cri/client.js";
import { verifyHandler, type VerifyResult } from "../src/agent/verify.js";
import { readStatus } from "../src/cli/status.js";
import { processIo } from "../src/cli/io.js";
import { renderStatus, type StatusView } from "../src/cli/render-status.js";
import { matchesSelector } from "../src/controller/policy-rollout.js";
import { KubeClient, type AnyObject, type KubeObject } from "../src/kube/client.js";
import { installCrds, node } from "../test/harness/cluster.js";
import { startContainerd, type Containerd } from "../test/harness/containerd.js";
import { startControlPlane, type ControlPlane } from "../test/harness/controlplane.js";
import { gvisorPayload } from "../test/harness/gvisor.js";
import { TEST_IMAGE } from "../test/harness/images.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const EXAMPLE = join(ROOT, "examples", "sandboxconfig.yaml");
const ROLLOUT_TIMEOUT_MS = 120_000;
const UNINSTALL_TIMEOUT_MS = 120_000;

const keep = process.argv.includes("--keep");
if (process.argv.some((a) => a === "-h" || a === "--help")) {
  process.stdout.write("usage: npm run demo [-- --keep]\n  --keep  leave the control plane, containerd, controller and agent running after the two containers (Ctrl-C stops and cleans up)\n");
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  process.stderr.write("demo: must run as root (it starts containerd, runc and gVisor sandboxes and mounts their file systems): sudo npm run demo\n");
  process.exit(1);
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s`;
const say = (text: string) => process.stdout.write(`${text}\n`);
const phase = (text: string) => say(`\n[${elapsed()}] ▶ ${text}`);
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Everything this run started, torn down in reverse order by cleanup().
const state: {
  cp?: ControlPlane;
  containerd?: Containerd;
  dirs: string[];
  children: Array<{ name: string; child: ChildProcess }>;
  kube?: KubeClient;
  cri?: CriClient;
} = { dirs: [], children: [] };
let cleaning: Promise<void> | undefined;

/** Stops what this run started: agent and controller, containerd (shims, mounts), control plane, temp dirs. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    state.cri?.close();
    state.kube?.close();
    for (const { child } of [...state.children].reverse()) await stopChild(child);
    await state.containerd?.stop().catch((e: Error) => say(`cleanup: containerd: ${e.message}`));
    await state.cp?.stop().catch((e: Error) => say(`cleanup: control plane: ${e.message}`));
    for (const d of state.dirs) rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Last resort when the process exits without cleanup() finishing: kill children, drop temp dirs (containerd's own hook kills it). */
process.on("exit", () => {
  for (const { child } of state.children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  for (const pid of state.cp?.pids ?? []) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const d of [...state.dirs, ...(state.cp ? [state.cp.dir] : [])]) rmSync(d, { recursive: true, force: true });
});

let interrupted = false;
function onSignal(sig: NodeJS.Signals): void {
  if (interrupted) {
    say(`\n${sig} again: exiting now (processes are killed; temp dirs removed)`);
    process.exit(130);
  }
  interrupted = true;
  say(`\n[${elapsed()}] ${sig}: stopping and cleaning up everything the demo started (${sig} again to force)…`);
  void cleanup().finally(() => process.exit(130));
}
/** The harness installs its own exit-at-once signal handlers; ours must be the only ones so cleanup can finish. */
function ownSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    for (const l of process.listeners(sig)) if (l !== onSignal) process.off(sig, l);
    if (!process.listeners(sig).includes(onSignal)) process.on(sig, onSignal);
  }
}
ownSignals();

function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function tail(path: string, lines = 25): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Runs a TypeScript entry point as its own process (tsx), output into <logDir>/<name>.log. */
function spawnTs(name: string, entry: string, args: string[], logDir: string): { child: ChildProcess; log: string } {
  const log = join(logDir, `${name}.log`);
  const fd = openSync(log, "a");
  // Own process group: a Ctrl-C on the terminal reaches only the demo, which stops them in order.
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, entry), ...args], { cwd: ROOT, stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  state.children.push({ name, child });
  child.once("exit", (code, signal) => {
    if (!cleaning && !interrupted) say(`demo: the ${name} exited unexpectedly (${signal ?? `exit ${code}`}); last lines of ${log}:\n${tail(log)}`);
  });
  return { child, log };
}

/** Redraws the `sandboxctl status` view (the CLI's own printer) until `done` says so. */
async function watchStatus(kube: KubeClient, what: string, timeoutMs: number, done: (v: StatusView) => boolean, logs: string[]): Promise<void> {
  const io = processIo();
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const view = await readStatus(kube);
    const key = JSON.stringify(view);
    if (io.isTTY || key !== last) {
      const text = renderStatus(view, "table", new Date());
      io.frame(io.isTTY ? text : `${last ? "\n" : ""}[${elapsed()}]\n${text}`);
      last = key;
    }
    if (done(view)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not done after ${timeoutMs / 1000}s\n${logs.map((l) => `--- ${l} (tail) ---\n${tail(l)}`).join("\n")}`);
    await sleep(300);
  }
}

/** The sandboxing.dev/* labels the controller put on the Node (agent label, runtime labels). */
const ourNodeLabels = (n: KubeObject) =>
  Object.entries(n.metadata.labels ?? {})
    .filter(([k]) => k.startsWith("sandboxing.dev/"))
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");

const readyTrue = (v: StatusView) => v.config.conditions.some((c) => c.type === "Ready" && c.status === "True");

function kernelTable(host: string, rows: VerifyResult[]): string {
  const cells = [["", "uname -r", "first line of dmesg"], ["host", host, "-"], ...rows.map((r) => [`${r.handler} container`, r.kernel ?? "?", r.dmesg || "(empty: the host restricts its kernel log; dmesg_restrict)"])];
  const w = [0, 1].map((i) => Math.max(...cells.map((c) => c[i]!.length)));
  return cells.map((c) => `  ${c[0]!.padEnd(w[0]!)}   ${c[1]!.padEnd(w[1]!)}   ${c[2]}`).join("\n");
}

interface Infra {
  work: string;
  hostRoot: string;
  payload: string;
  cp: ControlPlane;
  c: Containerd;
  kube: KubeClient;
  original: Buffer;
}

/** Control plane and containerd side by side; each goes into `state` as soon as it exists, so a failure of the other still cleans it up. */
async function startInfra(work: string): Promise<Infra> {
  phase("control plane (etcd + kube-apiserver) and containerd 1.6 + runc + gVisor, started side by side");
  const hostRoot = mkdtempSync(join(tmpdir(), "sandbox-operator-host-"));
  state.dirs.push(hostRoot);
  let payload = "";
  const [cp, c] = await Promise.all([
    startControlPlane().then((x) => (state.cp = x)),
    gvisorPayload("1.6").then(async (dir) => {
      state.dirs.push((payload = dir));
      return (state.containerd = await startContainerd({ version: "1.6", hostRoot }));
    }),
  ]);
  ownSignals();
  const kube = (state.kube = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-demo" }));
  say(`  apiserver  ${cp.url}, kubeconfig ${cp.kubeconfigPath}`);
  await installCrds(kube);
  say("  CRDs       SandboxConfig, SandboxNode established");
  const original = readFileSync(c.configPath);
  say(`  containerd ${c.socket}`);
  say(`  host root  ${hostRoot} (the agent's view of /; gVisor payload in ${payload})`);
  say(`  config     ${c.configPath}  sha256 ${sha256(original)}`);
  return { work, hostRoot, payload, cp, c, kube, original };
}

/** The controller and the agent as their own processes, with the flags a Pod would give them; returns their logs. */
function startComponents(x: Infra): string[] {
  phase("controller and agent as processes (tsx)");
  const { cp, c } = x;
  const controller = spawnTs("controller", "src/controller/main.ts", ["--kubeconfig", cp.kubeconfigPath, "--leader-elect", "false", "--metrics-port", "0", "--health-port", "0"], x.work);
  say(`  controller pid ${controller.child.pid} (log ${controller.log})`);
  const agentArgs = ["--node-name", hostname(), "--host-root", x.hostRoot, "--kubeconfig", cp.kubeconfigPath, "--cri-socket", c.socket, "--restart-strategy", "command", "--restart-command", c.restartScript, "--verify-with", "cri"];
  // Test-machine adaptations as in the node tests: host paths seen through the temp host root, runsc without its netstack.
  agentArgs.push("--payload-dir", x.payload, "--config-prefix", x.hostRoot, "--runsc-flag", "network=none", "--verify-image", TEST_IMAGE, "--health-port", "0");
  const agent = spawnTs("agent", "src/agent/main.ts", agentArgs, x.work);
  say(`  agent      pid ${agent.child.pid} (log ${agent.log})`);
  return [controller.log, agent.log];
}

/** This machine as a Node the example's selector picks (only its matchLabels are added). */
async function registerNode(kube: KubeClient, example: SandboxConfig): Promise<void> {
  phase(`node: register this machine as Node ${hostname()}`);
  const selector = example.spec.nodeSelector ?? {};
  const n = node(hostname(), { ...(selector.matchLabels ?? {}) });
  const labels = (n.metadata.labels ??= {});
  if (!matchesSelector(selector, labels)) throw new Error(`${EXAMPLE}: spec.nodeSelector ${JSON.stringify(selector)} does not select a Node labelled ${JSON.stringify(labels)}; the demo only adds matchLabels`);
  await kube.create(n);
  say(`  labels ${Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(", ")} (selected by ${EXAMPLE.slice(ROOT.length + 1)})`);
}

async function rollout(x: Infra, example: SandboxConfig & AnyObject, logs: string[]): Promise<void> {
  phase(`apply ${EXAMPLE.slice(ROOT.length + 1)}; rollout (the view of sandboxctl status --watch)`);
  const { kube, c } = x;
  await kube.apply(example);
  await watchStatus(kube, "rollout", ROLLOUT_TIMEOUT_MS, readyTrue, logs);
  const sn = await kube.get<SandboxNode & AnyObject>("SandboxNode", hostname());
  const probe = sn.status?.probe;
  say(`  agent ${sn.status?.agentVersion ?? "?"} on ${hostname()}: ${probe?.cri.kind} ${probe?.cri.version}; ${(probe?.backends ?? []).map((b) => `${b.backend} ${b.usable ? "usable" : "not usable"}`).join(", ")}`);
  if (probe?.kvm.message) say(`  kata: ${probe.kvm.message}`);
  say(`  Node ${hostname()}: ${ourNodeLabels(await kube.get("Node", hostname())) || "(no labels of ours)"}`);
  say(`  ${c.configPath} now sha256 ${sha256(readFileSync(c.configPath))} (handlers ${(sn.status?.handlers ?? []).map((h) => h.name).join(", ")})`);
}

/** One container under runc and one under the general class, straight through CRI (no kubelet here). */
async function twoKernels(x: Infra): Promise<void> {
  phase("one container under runc, one under sandboxed, through CRI");
  const cri = (state.cri = new CriClient(x.c.socket));
  const podLogs = join(x.work, "pod-logs");
  const results: VerifyResult[] = [];
  for (const handler of ["runc", "sandboxed"]) {
    const r = await verifyHandler({ cri, handler, image: TEST_IMAGE, logDir: { local: podLogs, runtime: podLogs } });
    if (!r.ok) throw new Error(`container under ${handler} failed: ${r.message}`);
    results.push(r);
  }
  say(kernelTable(release(), results));
  if (!/gVisor/.test(results[1]!.dmesg ?? "")) throw new Error(`the sandboxed container did not report gVisor's kernel log (dmesg: ${results[1]!.dmesg})`);
  if (results[0]!.kernel !== release()) throw new Error(`the runc container saw kernel ${results[0]!.kernel}, the host runs ${release()}`);
}

async function keepRunning(x: Infra): Promise<never> {
  phase("--keep: everything stays up");
  const cli = `node --import tsx src/cli/main.ts --kubeconfig ${x.cp.kubeconfigPath}`;
  say(`  kubeconfig: ${x.cp.kubeconfigPath}`);
  say(`  status:     ${cli} status --watch`);
  say(`  uninstall:  ${cli} uninstall --keep-crds`);
  say(`  CRI:        ${x.c.socket} (containerd config ${x.c.configPath})`);
  say(`  logs:       ${x.work}/controller.log, ${x.work}/agent.log`);
  say(`  stop:       Ctrl-C here (or kill -TERM ${process.pid}): stops every process and removes every temp dir`);
  return new Promise<never>(() => undefined);
}

async function uninstall(x: Infra, name: string, logs: string[]): Promise<void> {
  phase("uninstall: delete the SandboxConfig; the finalizer holds it until the node is reverted");
  const { kube, c, original } = x;
  await kube.delete("SandboxConfig", name);
  await watchStatus(kube, "uninstall", UNINSTALL_TIMEOUT_MS, (v) => !v.config.exists && v.nodes.length === 0, logs);
  const restored = readFileSync(c.configPath);
  const same = restored.equals(original);
  say(`  containerd config ${same ? "restored" : "NOT restored"}: sha256 before ${sha256(original)}`);
  say(`                                   after  ${sha256(restored)}${same ? "  (byte-identical)" : ""}`);
  if (!same) throw new Error(`${c.configPath} differs from the original after uninstall`);
  const rcs = await kube.list("RuntimeClass");
  say(`  RuntimeClasses left: ${rcs.items.length}; SandboxNodes left: ${(await kube.list("SandboxNode")).items.length}; Node labels of ours left: ${ourNodeLabels(await kube.get("Node", hostname())) || "none"}`);
}

async function main(): Promise<void> {
  say(`sandbox-operator demo${keep ? " (--keep)" : ""}: everything runs on this machine, under ${tmpdir()}`);
  const work = mkdtempSync(join(tmpdir(), "sandbox-operator-demo-"));
  state.dirs.push(work);
  const example = parse(readFileSync(EXAMPLE, "utf8")) as SandboxConfig & AnyObject;
  const x = await startInfra(work);
  const logs = startComponents(x);
  await registerNode(x.kube, example);
  await rollout(x, example, logs);
  await twoKernels(x);
  if (keep) await keepRunning(x);
  await uninstall(x, example.metadata.name, logs);
  phase("cleanup: agent, controller, containerd, control plane, temp dirs");
  await cleanup();
  say(`\n[${elapsed()}] done: demo finished, nothing left running`);
}

main().then(
  () => process.exit(0),
  async (e: Error) => {
    if (interrupted) return;
    process.stderr.write(`\ndemo failed at ${elapsed().trim()}: ${e.message}\n`);
    await cleanup();
    process.exit(1);
  },
);
