// Convergence benchmark (not a test): N Nodes in one real kube-apiserver per size, an instantly
// answering simulated agent, and, alternating, (a) the controller process, (b) the minimal-writes
// baseline (bench/converge-baseline.ts). Both must reach the same end state, checked the same way;
// requests are the apiserver's own apiserver_request_total counters. Prints min/median of R runs.
//   npm run bench:converge -- 100 1000 5000 [--runs 3]
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import { AGENT_NODE_LABEL, type SandboxConfig, type SandboxNode } from "../src/api/index.js";
import { KubeClient, type AnyObject, type KubeObject } from "../src/kube/client.js";
import { Informer } from "../src/kube/informer.js";
import { forEachLimit } from "../src/controller/installer-daemonset.js";
import { desiredNode, specDesiredFor } from "../src/controller/desired-node.js";
import { desiredRuntimeClasses, runtimeLabel, verifyRuntimeClasses } from "../src/controller/desired-runtimeclasses.js";
import { startControlPlane, freePort, type ControlPlane } from "../test/harness/controlplane.js";
import { installCrds, node } from "../test/harness/cluster.js";
import { SimulatedAgent, probeFor } from "../test/harness/simulated-agent.js";
import { setLogLevel } from "../src/telemetry/logger.js";
import { baselineChild, peakRssMiB } from "./converge-baseline.js";
import { apiserverRequests, diffCounts, isWrite, type RequestCounts } from "../test/harness/apiserver-metrics.js";

const SPEC = { nodeSelector: {}, runtimes: { allowed: ["gvisor"] }, rollout: { maxUnavailable: "100%" } };
const CONFIG: AnyObject = { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: SPEC };
const NS = "sandbox-operator-system";
type Actor = "controller" | "baseline";

interface Run {
  ms: number;
  /** Requests the actor made: the apiserver's counters minus the bench's own agent and observer. */
  requests: number;
  writes: number;
  /** The actor's writes by "VERB resource[/subresource]". */
  byKey: RequestCounts;
  rssMiB: number;
}

/** What the bench process itself sees, through watches opened before the window. */
class Observer {
  readonly nodes: Informer<KubeObject>;
  readonly sns: Informer<SandboxNode & KubeObject>;
  readonly configs: Informer<SandboxConfig & KubeObject>;
  readonly rcs: Informer<KubeObject>;
  constructor(readonly client: KubeClient) {
    const o = { watchTimeoutSeconds: 3600 };
    this.nodes = new Informer(client, "Node", o);
    this.sns = new Informer(client, "SandboxNode", o);
    this.configs = new Informer(client, "SandboxConfig", o);
    this.rcs = new Informer(client, "RuntimeClass", o);
  }
  all = () => [this.nodes, this.sns, this.configs, this.rcs] as Array<Informer<KubeObject>>;
  async start() {
    for (const i of this.all()) i.start();
    await Promise.all(this.all().map((i) => i.waitForSync()));
  }
  async stop() {
    await Promise.all(this.all().map((i) => i.stop()));
  }

  /** The end state both must reach: every Node labelled, every SandboxNode applied, the classes, config Ready N/N. */
  converged(n: number): string | true {
    const desired = desiredNode(SPEC as SandboxConfig["spec"], probeFor(["gvisor"]));
    const want = [AGENT_NODE_LABEL, ...desired.handlers.map((h) => runtimeLabel(h.name))];
    const unlabelled = this.nodes.list().filter((x) => want.some((k) => x.metadata.labels?.[k] !== "true")).length;
    if (unlabelled) return `${unlabelled} nodes unlabelled`;
    const applied = this.sns.list().filter((s) => specDesiredFor(s.spec, s.status?.probe)?.hash === desired.hash && s.status?.appliedHash === desired.hash).length;
    if (applied !== n) return `${applied}/${n} SandboxNodes applied`;
    const classes = desiredRuntimeClasses(SPEC as SandboxConfig["spec"]);
    const missing = [...classes, ...verifyRuntimeClasses(classes)].filter((rc) => !this.rcs.get(rc.metadata.name)).length;
    if (missing) return `${missing} RuntimeClasses missing`;
    const c = this.configs.get("cluster");
    const ready = c?.status?.counts?.ready === n && c.status.conditions?.some((x) => x.type === "Ready" && x.status === "True");
    return ready ? true : `config status ${JSON.stringify(c?.status?.counts)}`;
  }
}

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`bench: ${what} not reached in ${timeoutMs} ms`);
}

interface Env {
  cp: ControlPlane;
  admin: KubeClient;
  agent: SimulatedAgent;
  observer: Observer;
}

async function prepare(): Promise<Env> {
  const cp = await startControlPlane();
  const admin = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "bench-admin" });
  await installCrds(admin);
  await admin.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } } as AnyObject);
  const agent = await SimulatedAgent.start(cp.kubeConfig(), {});
  const observer = new Observer(await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "bench-observer" }));
  await observer.start();
  return { cp, admin, agent, observer };
}

/** Back to the start state between runs (outside the window): fresh Nodes, no SandboxNode, class, config or Event. */
async function reset(env: Env, n: number): Promise<void> {
  const { admin, observer } = env;
  if (await admin.getOrNull("SandboxConfig", "cluster")) {
    await admin.mergePatch("SandboxConfig", "cluster", { metadata: { finalizers: null } });
    await admin.delete("SandboxConfig", "cluster");
  }
  for (const p of ["/apis/sandboxing.dev/v1alpha1/sandboxnodes", "/apis/node.k8s.io/v1/runtimeclasses", "/api/v1/nodes", "/api/v1/namespaces/default/events"]) {
    const r = await admin.raw("DELETE", p);
    if (r.status >= 300) throw new Error(`bench reset: DELETE ${p}: ${r.status} ${r.body.slice(0, 200)}`);
  }
  await waitFor("empty caches", async () => observer.nodes.size + observer.sns.size + observer.rcs.size + observer.configs.size === 0 && env.agent.informer.size === 0, 60_000);
  await forEachLimit(Array.from({ length: n }, (_, i) => `node-${i}`), 16, async (name) => {
    await admin.create(node(name));
  });
  await waitFor(`${n} nodes seen`, async () => observer.nodes.size === n, 60_000);
}

/** Counts of the bench's own clients (agent, observer) by verb, to subtract from the apiserver's. */
const ownCounts = (env: Env) => {
  const out = new Map<string, number>();
  for (const c of [env.agent.client, env.observer.client]) for (const [v, k] of c.requestCounts) out.set(v, (out.get(v) ?? 0) + k);
  return out;
};

async function measure(env: Env, n: number, actor: Actor): Promise<Run> {
  await reset(env, n);
  const port = await freePort();
  let child: ChildProcess | undefined;
  let done: Promise<number> | undefined;
  try {
    if (actor === "controller") {
      child = spawn(process.execPath, ["dist/src/controller/main.js", "--kubeconfig", env.cp.kubeconfigPath, "--namespace", NS, "--leader-elect", "false", "--metrics-port", String(port), "--health-port", String(port), "--log-level", process.env.BENCH_LOG_LEVEL ?? "warn"], { stdio: ["ignore", "inherit", "inherit"] });
      await waitFor("controller ready", async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 60_000);
    }
    const before = await apiserverRequests(env.admin);
    const own0 = ownCounts(env);
    const t0 = Date.now();
    await env.admin.create(CONFIG);
    if (actor === "baseline") {
      // Async on purpose: the simulated agent runs in this process and must keep answering.
      const c = spawn(process.execPath, ["dist/bench/converge.js", "--baseline-child", env.cp.kubeconfigPath, String(n)], { stdio: ["ignore", "pipe", "inherit"] });
      child = c;
      let text = "";
      c.stdout!.on("data", (d) => (text += d));
      done = new Promise((resolve, reject) => c.on("exit", (code) => (code === 0 ? resolve((JSON.parse(text.trim().split("\n").pop()!) as { rssMiB: number }).rssMiB) : reject(new Error(`baseline exited with ${code}`)))));
    }
    let last: string | true = "";
    await waitFor(`${actor} end state for ${n} nodes`, async () => (last = env.observer.converged(n)) === true, Number(process.env.BENCH_TIMEOUT_MS ?? 600_000)).catch((e: Error) => {
      throw new Error(`${e.message}; last: ${last}`);
    });
    const ms = Date.now() - t0;
    const rssMiB = actor === "baseline" ? await done! : await peakRssMiB(child!.pid!);
    // Read after the end state. Ours to subtract: the agent's and the observer's requests, and the admin's one config create (scrapes of /metrics have no resource and are not counted).
    const delta = diffCounts(before, await apiserverRequests(env.admin));
    const own1 = ownCounts(env);
    let own = 0;
    for (const [v, k] of own1) own += k - (own0.get(v) ?? 0);
    // kube-apiserver renews its own identity Lease; neither actor touches Leases (--leader-elect false).
    for (const k of Object.keys(delta)) if (k.endsWith(" leases")) delete delta[k];
    const total = Object.values(delta).reduce((a, b) => a + b, 0);
    // Writes are attributed exactly: the simulated agent writes only SandboxNode status, the admin only the config create.
    const byKey = Object.fromEntries(Object.entries(delta).filter(([k]) => isWrite(k) && !k.endsWith(" sandboxnodes/status")));
    byKey["POST sandboxconfigs"] = (byKey["POST sandboxconfigs"] ?? 0) - 1;
    if (!byKey["POST sandboxconfigs"]) delete byKey["POST sandboxconfigs"];
    const writes = Object.values(byKey).reduce((a, b) => a + b, 0);
    return { ms, requests: total - own - 1, writes, byKey, rssMiB };
  } finally {
    child?.kill("SIGKILL");
    await done?.catch(() => undefined);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const min = (xs: number[]) => Math.min(...xs);
const fmt = (xs: number[], f: (x: number) => string) => `${f(min(xs))} / ${f(median(xs))}`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--baseline-child") return baselineChild(args[1]!, Number(args[2]));
  setLogLevel("warn");
  const runsAt = args.indexOf("--runs");
  const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 3;
  const sizes = args.length ? args.map(Number) : [100, 1000];
  if (!(runs >= 1) || sizes.some((s) => !(s >= 1))) throw new Error("usage: npm run bench:converge -- <nodes>... [--runs R]  (e.g. -- 100 1000 5000; R >= 1, default 3)");
  console.log("building dist/ (the controller runs as `node dist/src/controller/main.js`) ...");
  if (!process.argv[1]?.includes("dist")) execFileSync("npx", ["tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
  const [l1, l5, l15] = loadavg().map((x) => x.toFixed(2));
  console.log(`converge bench ${new Date().toISOString()}, load ${l1} ${l5} ${l15}; ${runs} run(s) per size, controller and baseline alternating (C B B C ...) on one control plane per size`);
  const rows: string[] = [];
  for (const n of sizes) {
    const env = await prepare();
    const res: Record<Actor, Run[]> = { controller: [], baseline: [] };
    try {
      for (let i = 0; i < runs; i++) {
        const order: Actor[] = i % 2 === 0 ? ["controller", "baseline"] : ["baseline", "controller"];
        for (const actor of order) {
          const r = await measure(env, n, actor);
          res[actor].push(r);
          console.log(`N=${n} run ${i + 1} ${actor.padEnd(10)} ${(r.ms / 1000).toFixed(1)} s, requests ${r.requests}, writes ${r.writes} (${(r.writes / n).toFixed(2)}/node), RSS ${r.rssMiB.toFixed(0)} MiB, ${JSON.stringify(r.byKey)}`);
        }
      }
    } finally {
      await env.observer.stop();
      env.observer.client.close();
      await env.agent.stop();
      env.admin.close();
      await env.cp.stop();
    }
    const c = res.controller;
    const b = res.baseline;
    const s = (x: number) => `${(x / 1000).toFixed(1)} s`;
    const i0 = (x: number) => x.toFixed(0);
    const ratio = (f: (r: Run) => number) => (median(c.map(f)) / median(b.map(f))).toFixed(2);
    rows.push(`| ${n} | ${fmt(c.map((r) => r.ms), s)} | ${fmt(b.map((r) => r.ms), s)} | ${ratio((r) => r.ms)} | ${fmt(c.map((r) => r.requests), i0)} | ${fmt(b.map((r) => r.requests), i0)} | ${ratio((r) => r.requests)} | ${(median(c.map((r) => r.writes)) / n).toFixed(2)} | ${(median(b.map((r) => r.writes)) / n).toFixed(2)} | ${fmt(c.map((r) => r.rssMiB), i0)} MiB | ${fmt(b.map((r) => r.rssMiB), i0)} MiB |`);
  }
  const [e1, e5, e15] = loadavg().map((x) => x.toFixed(2));
  console.log(`\nmin / median of ${runs} run(s); ratios are median / median; requests and writes from apiserver_request_total (the agent's SandboxNode status writes and the bench's own requests excluded); load at the end ${e1} ${e5} ${e15}`);
  console.log("| nodes | controller: create -> end state | baseline | time ratio | controller requests | baseline requests | request ratio | controller writes/node | baseline writes/node | controller peak RSS | baseline peak RSS |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    console.error(e.stack ?? e.message);
    process.exit(1);
  },
);
