// Convergence benchmark (not a test): N Nodes in a real kube-apiserver, an instantly answering
// simulated agent, and (a) the controller process, (b) a baseline doing only the minimal writes.
// Prints time SandboxConfig-create -> Ready N/N, API requests, peak RSS, and the ratios.
//   npm run bench:converge -- 100 1000
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type AnyObject, type KubeObject } from "../src/kube/client.js";
import { Informer } from "../src/kube/informer.js";
import { forEachLimit } from "../src/controller/installer-daemonset.js";
import { desiredNode } from "../src/controller/desired-node.js";
import { desiredRuntimeClasses, runtimeLabel } from "../src/controller/desired-runtimeclasses.js";
import type { SandboxConfig, SandboxNode } from "../src/api/index.js";
import { startControlPlane, freePort, type ControlPlane } from "../test/harness/controlplane.js";
import { installCrds, node } from "../test/harness/cluster.js";
import { SimulatedAgent, probeFor } from "../test/harness/simulated-agent.js";
import { setLogLevel } from "../src/telemetry/logger.js";

const SPEC = { nodeSelector: {}, runtimes: { allowed: ["gvisor"] }, rollout: { maxUnavailable: "100%" } };
const CONFIG: AnyObject = { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: SPEC };

interface Run {
  ms: number;
  requests: number;
  byVerb: Record<string, number>;
  rssMiB: number;
}

const peakRssMiB = (pid: number) => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

/** The baseline, run as its own process: the fewest writes that reach the same end state. */
async function baselineChild(kubeconfig: string, n: number): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const client = await KubeClient.fromKubeConfig(kc, { fieldManager: "baseline" });
  const config = await client.get<SandboxConfig & KubeObject>("SandboxConfig", "cluster");
  const desired = desiredNode(config.spec, probeFor(["gvisor"]));
  const started = Date.now();
  const sns = new Informer<SandboxNode & KubeObject>(client, "SandboxNode");
  sns.start();
  await sns.waitForSync();
  const names = Array.from({ length: n }, (_, i) => `node-${i}`);
  // One create per node with the final spec (the baseline knows the probe in advance).
  await forEachLimit(names, 16, async (name) => {
    await client.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name, labels: { "sandboxing.dev/config": "cluster" } }, spec: { action: "Apply", proceed: true, desired } } as unknown as KubeObject);
  });
  const labelled = new Set<string>();
  const labels = Object.fromEntries(desired.handlers.map((h) => [runtimeLabel(h.name), "true"]));
  while (labelled.size < n) {
    const done = sns.list().filter((s) => s.status?.appliedHash === desired.hash && !labelled.has(s.metadata.name));
    await forEachLimit(done, 16, async (s) => {
      await client.mergePatch("Node", s.metadata.name, { metadata: { labels } });
      labelled.add(s.metadata.name);
    });
    if (labelled.size < n) await new Promise((r) => setTimeout(r, 20));
  }
  for (const rc of desiredRuntimeClasses(config.spec)) await client.create(rc as unknown as KubeObject);
  await client.mergePatch("SandboxConfig", "cluster", { status: { counts: { selected: n, ready: n, progressing: 0, degraded: 0, uninstalling: 0 } } }, { subresource: "status" });
  await sns.stop();
  const result = { ms: Date.now() - started, requests: client.totalRequests, byVerb: Object.fromEntries(client.requestCounts), rssMiB: peakRssMiB(process.pid) };
  process.stdout.write(JSON.stringify(result) + "\n");
  client.close();
}

async function scrape(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^sandbox_operator_api_requests\{verb="(\w+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`bench: ${what} not reached in ${timeoutMs} ms`);
}

async function prepare(n: number): Promise<{ cp: ControlPlane; admin: KubeClient; agent: SimulatedAgent }> {
  const cp = await startControlPlane();
  const admin = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "bench-admin" });
  await installCrds(admin);
  await admin.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "sandbox-operator-system" } } as AnyObject);
  await forEachLimit(Array.from({ length: n }, (_, i) => `node-${i}`), 16, async (name) => {
    await admin.create(node(name));
  });
  const agent = await SimulatedAgent.start(cp.kubeConfig(), {});
  return { cp, admin, agent };
}

const readyN = async (admin: KubeClient, n: number) => {
  const c = await admin.getOrNull<SandboxConfig & KubeObject>("SandboxConfig", "cluster");
  return c?.status?.counts?.ready === n && c.status.conditions?.some((x) => x.type === "Ready" && x.status === "True") === true;
};

async function runController(n: number): Promise<Run> {
  const { cp, admin, agent } = await prepare(n);
  const port = await freePort();
  let child: ChildProcess | undefined;
  try {
    child = spawn(process.execPath, ["dist/src/controller/main.js", "--kubeconfig", cp.kubeconfigPath, "--leader-elect", "false", "--metrics-port", String(port), "--health-port", String(port), "--log-level", process.env.BENCH_LOG_LEVEL ?? "warn"], { stdio: ["ignore", "inherit", "inherit"] });
    await waitFor("controller ready", async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 60_000);
    const before = await scrape(port);
    const t0 = Date.now();
    await admin.create(CONFIG);
    await waitFor(`Ready ${n}/${n}`, () => readyN(admin, n), Number(process.env.BENCH_TIMEOUT_MS ?? 600_000)).catch(async (e: Error) => {
      const c = await admin.getOrNull<SandboxConfig & KubeObject>("SandboxConfig", "cluster");
      throw new Error(`${e.message}; status: ${JSON.stringify({ counts: c?.status?.counts, conditions: c?.status?.conditions })}`);
    });
    const ms = Date.now() - t0;
    const after = await scrape(port);
    const byVerb = Object.fromEntries(Object.entries(after).map(([v, c]) => [v, c - (before[v] ?? 0)]));
    return { ms, requests: Object.values(byVerb).reduce((a, b) => a + b, 0), byVerb, rssMiB: peakRssMiB(child.pid!) };
  } finally {
    child?.kill("SIGKILL");
    await agent.stop();
    admin.close();
    await cp.stop();
  }
}

async function runBaseline(n: number): Promise<Run> {
  const { cp, admin, agent } = await prepare(n);
  try {
    await admin.create(CONFIG);
    // Async on purpose: the simulated agent runs in this process and must keep answering.
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["dist/bench/converge.js", "--baseline-child", cp.kubeconfigPath, String(n)], { stdio: ["ignore", "pipe", "inherit"] });
      let text = "";
      child.stdout.on("data", (d) => (text += d));
      child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`baseline exited with ${code}`))));
    });
    const run = JSON.parse(out.trim().split("\n").pop()!) as Run;
    if (!(await readyN(admin, n)) && !(await admin.get<SandboxConfig & KubeObject>("SandboxConfig", "cluster")).status?.counts) throw new Error("baseline did not finish");
    return run;
  } finally {
    await agent.stop();
    admin.close();
    await cp.stop();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--baseline-child") return baselineChild(args[1]!, Number(args[2]));
  setLogLevel("warn");
  const sizes = args.length ? args.map(Number) : [100, 1000];
  console.log("building dist/ (the controller runs as `node dist/src/controller/main.js`) ...");
  if (!process.argv[1]?.includes("dist")) execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
  const rows: string[] = [];
  for (const n of sizes) {
    const ctl = await runController(n);
    const base = await runBaseline(n);
    const r = (a: number, b: number) => (a / b).toFixed(2);
    rows.push(
      `| ${n} | ${(ctl.ms / 1000).toFixed(1)} s | ${(base.ms / 1000).toFixed(1)} s | ${r(ctl.ms, base.ms)} | ${ctl.requests} | ${base.requests} | ${r(ctl.requests, base.requests)} | ${ctl.rssMiB.toFixed(0)} MiB | ${base.rssMiB.toFixed(0)} MiB |`,
    );
    console.log(`N=${n} controller ${JSON.stringify(ctl)}`);
    console.log(`N=${n} baseline   ${JSON.stringify(base)}`);
  }
  console.log("\n| nodes | controller: create -> Ready N/N | baseline | time ratio | controller API requests | baseline requests | request ratio | controller peak RSS | baseline peak RSS |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
