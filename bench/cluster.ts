// Cluster benchmark on the cluster tier's real single-node cluster: time from `kubectl apply` of
// the operator to the first `sandboxed` pod Running on a fresh node, and pod start latency
// (create -> Running, sequential) for `sandboxed`, `runc` and gVisor configured by hand on the same node.
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeClient, type AnyObject, type KubeObject } from "../src/kube/client.js";
import { repoRoot } from "../src/manifests/image-lock.js";
import { NAMESPACE } from "../src/manifests/names.js";
import { startKubeCluster } from "../test/harness/kube-cluster.js";
import { pushOperatorImage } from "../test/harness/operator-image.js";

const PODS = Number(process.env.PODS ?? 20);
const ROOT = repoRoot();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Pod = KubeObject & { status?: { phase?: string } };

const podObj = (name: string, image: string, runtimeClassName?: string): AnyObject => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "default", labels: { bench: "start" } },
  spec: { runtimeClassName, terminationGracePeriodSeconds: 0, containers: [{ name: "main", image, command: ["sleep", "3600"] }] },
});

async function untilRunning(kube: KubeClient, name: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await kube.get<Pod>("Pod", name, "default");
    if (p.status?.phase === "Running") return;
    if (p.status?.phase === "Failed" || Date.now() > deadline) throw new Error(`pod ${name}: ${p.status?.phase ?? "no phase"} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return [s[0]!, q(0.5), q(0.9), s[s.length - 1]!].map((v) => `${(v / 1000).toFixed(2)}`.padStart(7)).join(" ");
}

const cluster = await startKubeCluster({ gvisorByHand: true, log: () => undefined });
try {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const kube = await KubeClient.fromKubeConfig(kc, { fieldManager: "bench-cluster" });
  await cluster.kubectl(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "node.k8s.io/v1", kind: "RuntimeClass", metadata: { name: "gvisor-by-hand" }, handler: "runsc" }) });
  await pushOperatorImage(cluster.registry);

  // Install -> first sandboxed pod Running: the clock starts at the user's first command.
  const t0 = performance.now();
  await cluster.kubectl(["apply", "--server-side", "-f", join(ROOT, "deploy", "sandbox-operator.yaml")]);
  await cluster.kubectl(["apply", "-f", join(ROOT, "examples", "sandboxconfig.yaml")]);
  const first = podObj("first-sandboxed", cluster.images.busybox, "sandboxed");
  // Until the controller publishes the RuntimeClass the apiserver refuses the pod; a user retries.
  for (;;) {
    try {
      await kube.create(first as KubeObject);
      break;
    } catch {
      await sleep(200);
    }
  }
  await untilRunning(kube, "first-sandboxed", 300_000);
  const installMs = performance.now() - t0;
  const controllerUp = JSON.parse(await cluster.kubectl(["-n", NAMESPACE, "get", "deployment", "sandbox-operator-controller", "-o", "json"])) as { status: { readyReplicas?: number } };
  await kube.delete("Pod", "first-sandboxed", "default");

  // Pod start latency, sequential, alternating classes so drift hits all three alike.
  const classes: Array<[string, string | undefined]> = [["runc", undefined], ["gvisor-by-hand", "gvisor-by-hand"], ["sandboxed", "sandboxed"]];
  const samples = new Map<string, number[]>(classes.map(([n]) => [n, []]));
  for (let i = 0; i < PODS; i++) {
    for (const [label, rc] of classes) {
      const name = `start-${label}-${i}`;
      const t = performance.now();
      await kube.create(podObj(name, cluster.images.busybox, rc) as KubeObject);
      await untilRunning(kube, name);
      samples.get(label)!.push(performance.now() - t);
      await kube.delete("Pod", name, "default");
    }
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
  console.log(`sandbox-operator ${pkg.version} cluster bench, ${new Date().toISOString()}, load ${(await import("node:os")).loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`node: containerd ${cluster.containerd}, cluster ready in ${(cluster.readyMs / 1000).toFixed(1)} s`);
  console.log("");
  console.log(`install -> first sandboxed pod Running (kubectl apply of deploy/ and the example, controller ${controllerUp.status.readyReplicas ?? 0}/2 ready at the end): ${(installMs / 1000).toFixed(1)} s`);
  console.log("");
  console.log(`pod start latency, create -> Running, ${PODS} pods each, sequential, seconds`);
  console.log(`${"RuntimeClass".padEnd(16)}${"min".padStart(7)} ${"p50".padStart(7)} ${"p90".padStart(7)} ${"max".padStart(7)}`);
  for (const [label] of classes) console.log(`${label.padEnd(16)}${stats(samples.get(label)!)}`);
  kube.close();
} finally {
  const left = await cluster.stop();
  if (left.length) console.error(`left on the host: ${left.join("; ")}`);
}
