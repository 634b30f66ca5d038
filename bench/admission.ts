// Added latency of the admission webhook: pod creates (server-side dry-run) through a real
// kube-apiserver at a fixed rate, first without the webhook registered, then with it (as a process),
// then enforce and off namespaces interleaved request by request; plus the apiserver's own histogram.
import { spawn } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cpus, loadavg, tmpdir } from "node:os";
import { KubeClient } from "../src/kube/client.js";
import { startControlPlane, freePort } from "../test/harness/controlplane.js";
import { eventually } from "../test/harness/cluster.js";
import { NS, createPod, pod, setupCluster, waitWebhookActive } from "../test/integration/admission-fixture.js";

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const RATE = arg("rate", 200);
const SECONDS = arg("duration", 20);

/** CPU time (user + system) a process has used, in ms, from /proc. */
function cpuMs(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

interface Phase {
  name: string;
  /** CPU ms per request: apiserver, webhook. */
  cpu?: { apiserver: number; webhook: number };
  sent: number;
  errors: string[];
  latencies: number[];
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};

/** Open loop: request i is due at t0 + i/rate; latency counts from when it was due, so a stall is not hidden. */
async function run(client: KubeClient, name: string, seconds: number, ns: string, pids: { apiserver?: number; webhook?: number } = {}): Promise<Phase> {
  return (await runInterleaved(client, [name], seconds, [ns], pids))[0]!;
}

/** Like run, request i going to namespaces[i % n]: one Phase per namespace, measured under the same load. */
async function runInterleaved(client: KubeClient, names: string[], seconds: number, namespaces: string[], pids: { apiserver?: number; webhook?: number } = {}): Promise<Phase[]> {
  const phases: Phase[] = names.map((name) => ({ name, sent: 0, errors: [], latencies: [] }));
  const cpu0 = { apiserver: cpuMs(pids.apiserver), webhook: cpuMs(pids.webhook) };
  const total = Math.round(RATE * seconds);
  const t0 = performance.now() + 50;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const phase = phases[i % phases.length]!;
    phase.sent++;
    inflight.push(
      createPod(client, pod(`bench-${i}`, namespaces[i % namespaces.length]!), true).then(
        (r) => {
          phase.latencies.push(performance.now() - due);
          if (r.status !== 201) phase.errors.push(`${r.status} ${r.message}`);
        },
        (e: Error) => void phase.errors.push(e.message),
      ),
    );
  }
  await Promise.all(inflight);
  // CPU is per request of the whole run; interleaved phases share it, so only a single phase reports it.
  if (phases.length === 1) phases[0]!.cpu = { apiserver: (cpuMs(pids.apiserver) - cpu0.apiserver) / total, webhook: (cpuMs(pids.webhook) - cpu0.webhook) / total };
  return phases;
}

/** Cumulative bucket counts (le in seconds -> count) of the apiserver's own webhook duration histogram for one webhook. */
async function webhookHistogram(client: KubeClient, webhook: string): Promise<Map<number, number>> {
  const text = (await client.raw("GET", "/metrics")).body;
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^apiserver_admission_webhook_admission_duration_seconds_bucket\{([^}]*)\} ([0-9.e+]+)$/gm)) {
    if (!m[1]!.includes(`name="${webhook}"`)) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
    const key = le === "+Inf" ? Infinity : Number(le);
    out.set(key, (out.get(key) ?? 0) + Number(m[2]));
  }
  return out;
}

/** A quantile from two cumulative histograms (after - before), linear within a bucket as Prometheus' histogram_quantile does. */
function histogramQuantile(before: Map<number, number>, after: Map<number, number>, q: number): { ms: number; count: number } {
  const les = [...after.keys()].sort((a, b) => a - b);
  const cum = les.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const count = cum.at(-1) ?? 0;
  if (!count) return { ms: NaN, count };
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < les.length; i++) {
    if (cum[i]! >= rank) {
      if (les[i] === Infinity) return { ms: lower * 1000, count };
      return { ms: (lower + ((les[i]! - lower) * (rank - below)) / Math.max(1, cum[i]! - below)) * 1000, count };
    }
    lower = les[i]!;
    below = cum[i]!;
  }
  return { ms: NaN, count };
}

const os = () => `${cpus().length} CPUs, load average at start ${START_LOAD}`;
const START_LOAD = loadavg().map((x) => x.toFixed(1)).join(" ");

const f = (n: number) => n.toFixed(2).padStart(8);
function row(p: Phase) {
  const l = p.latencies;
  const c = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? "-" : n.toFixed(2)).padStart(10);
  return `${p.name.padEnd(20)} ${String(p.sent).padStart(6)} ${String(p.errors.length).padStart(6)} ${f(pct(l, 50))} ${f(pct(l, 90))} ${f(pct(l, 99))} ${f(Math.max(...l))} ${c(p.cpu?.apiserver)} ${c(p.cpu?.webhook)}`;
}

async function main() {
  const cp = await startControlPlane();
  const client = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "bench" });
  let child: ReturnType<typeof spawn> | undefined;
  try {
    await setupCluster(client);
    console.log(`admission bench: ${RATE} pod creates/s for ${SECONDS} s per phase, server-side dry-run, namespace ${NS.enforce} (enforce: one mutating call per pod, the validating safety net skipped by matchConditions), loopback, kube-apiserver v1.34.4`);
    await run(client, "warm-up", 3, NS.enforce);
    const apiserver = cp.pids[1];
    const without = await run(client, "without webhook", SECONDS, NS.enforce, { apiserver });

    const [port, healthPort] = [await freePort(), await freePort()];
    const logPath = join(tmpdir(), `admission-bench-webhook-${process.pid}.log`);
    const log = openSync(logPath, "a");
    child = spawn(process.execPath, [...(process.env.WEBHOOK_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.WEBHOOK_CPU_PROF}`] : []), "--import", "tsx", "src/admission/main.ts", `--kubeconfig=${cp.kubeconfigPath}`, `--port=${port}`, `--health-port=${healthPort}`, "--bind-address=127.0.0.1", `--url=https://127.0.0.1:${port}`], { stdio: ["ignore", log, log] });
    closeSync(log);
    await eventually("webhook ready", async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status === 200, 60_000, 250);
    await waitWebhookActive(client);
    await run(client, "warm-up", 3, NS.enforce);
    const pids = { apiserver, webhook: child.pid };
    const hook = "enforce.pods.sandboxing.dev";
    const h0 = await webhookHistogram(client, hook);
    const withHook = await run(client, "with webhook", SECONDS, NS.enforce, pids);
    const h1 = await webhookHistogram(client, hook);
    const offNs = await run(client, "with, off ns", SECONDS, NS.off, pids);
    const [enforceI, offI] = await runInterleaved(client, ["enforce, interleaved", "off, interleaved"], SECONDS, [NS.enforce, NS.off], pids);
    const injected = await createPod(client, pod("check", NS.enforce), true);
    if (injected.obj?.spec.runtimeClassName !== "sandboxed") throw new Error("the webhook did not mutate during the measured phase");

    console.log(`${"phase".padEnd(20)} ${"sent".padStart(6)} ${"errors".padStart(6)} ${"p50 ms".padStart(8)} ${"p90 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"max ms".padStart(8)} ${"apisrv CPU".padStart(10)} ${"hook CPU".padStart(10)}`);
    console.log("(CPU columns: CPU ms per pod create used by kube-apiserver and by the webhook process)");
    console.log(row(without));
    console.log(row(withHook));
    console.log(row(offNs));
    console.log(row(enforceI!));
    console.log(row(offI!));
    const added50 = pct(withHook.latencies, 50) - pct(without.latencies, 50);
    const added99 = pct(withHook.latencies, 99) - pct(without.latencies, 99);
    console.log(`webhook log: ${logPath}`);
    console.log(`added by the webhook (enforce namespace): p50 ${added50.toFixed(2)} ms, p99 ${added99.toFixed(2)} ms (target: < 5 ms at p99)`);
    console.log(`interleaved, request by request under the same load (enforce minus off namespace): p50 ${(pct(enforceI!.latencies, 50) - pct(offI!.latencies, 50)).toFixed(2)} ms, p99 ${(pct(enforceI!.latencies, 99) - pct(offI!.latencies, 99)).toFixed(2)} ms`);
    const [a50, a99] = [histogramQuantile(h0, h1, 0.5), histogramQuantile(h0, h1, 0.99)];
    console.log(`the apiserver's own view of the call (apiserver_admission_webhook_admission_duration_seconds, ${a50.count} calls in the "with webhook" phase; its buckets are 5/25/100 ms wide, so this is coarse): p50 ${a50.ms.toFixed(2)} ms, p99 ${a99.ms.toFixed(2)} ms`);
    console.log(`off namespace (the apiserver skips the call by matchConditions): p50 ${(pct(offNs.latencies, 50) - pct(without.latencies, 50)).toFixed(2)} ms, p99 ${(pct(offNs.latencies, 99) - pct(without.latencies, 99)).toFixed(2)} ms`);
    console.log(`machine: ${os()}; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(" ")} (the baseline shares the machine with the same load)`);
    for (const p of [without, withHook, offNs, enforceI!, offI!]) if (p.errors.length) console.log(`${p.name} errors (first 3): ${p.errors.slice(0, 3).join(" | ")}`);
    process.exitCode = [without, withHook, offNs, enforceI!, offI!].some((p) => p.errors.length) ? 1 : 0;
  } finally {
    child?.kill("SIGTERM");
    client.close();
    await cp.stop();
  }
}

await main();
