// The converge bench's baseline, run as its own process by bench/converge.ts: the fewest writes
// that reach the controller's end state, knowing every node's probe in advance.
import { KubeConfig } from "@kubernetes/client-node";
import { AGENT_NODE_LABEL, AGENT_NODE_LABEL_VALUE, type SandboxConfig, type SandboxNode } from "../src/api/index.js";
import { KubeClient, type KubeObject } from "../src/kube/client.js";
import { Informer } from "../src/kube/informer.js";
import { forEachLimit } from "../src/controller/installer-daemonset.js";
import { desiredNode } from "../src/controller/desired-node.js";
import { FINALIZER } from "../src/controller/config-status.js";
import { CONFIG_LABEL, desiredRuntimeClasses, runtimeLabel, verifyRuntimeClasses } from "../src/controller/desired-runtimeclasses.js";
import { probeFor } from "../test/harness/simulated-agent.js";

export const peakRssMiB = async (pid: number): Promise<number> => {
  const { readFileSync } = await import("node:fs");
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};

/**
 * Per node, as the controller must (the agent DaemonSet runs only on labelled nodes): one Node
 * patch with the agent label, then one SandboxNode create carrying the final spec (desired from the
 * known probe, proceed: true), and one Node patch with the runtime labels once the agent reports
 * the hash applied. Once: the finalizer, the RuntimeClasses (user and verification classes), one status
 * patch. Reads: one SandboxNode list+watch. Prints its peak RSS as JSON on stdout.
 */
export async function baselineChild(kubeconfig: string, n: number): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const client = await KubeClient.fromKubeConfig(kc, { fieldManager: "baseline" });
  const config = await client.get<SandboxConfig & KubeObject>("SandboxConfig", "cluster");
  const desired = desiredNode(config.spec, probeFor(["gvisor"]));
  await client.mergePatch("SandboxConfig", "cluster", { metadata: { finalizers: [FINALIZER] } });
  const sns = new Informer<SandboxNode & KubeObject>(client, "SandboxNode", { labelSelector: `${CONFIG_LABEL}=cluster` });
  sns.start();
  await sns.waitForSync();
  const names = Array.from({ length: n }, (_, i) => `node-${i}`);
  await forEachLimit(names, 16, async (name) => {
    await client.mergePatch("Node", name, { metadata: { labels: { [AGENT_NODE_LABEL]: AGENT_NODE_LABEL_VALUE } } });
    await client.create({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxNode", metadata: { name, labels: { [CONFIG_LABEL]: "cluster" } }, spec: { action: "Apply", proceed: true, configGeneration: config.metadata.generation, desired } } as unknown as KubeObject);
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
  const classes = desiredRuntimeClasses(config.spec);
  for (const rc of [...classes, ...verifyRuntimeClasses(classes)]) await client.create(rc as unknown as KubeObject);
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const gen = config.metadata.generation;
  await client.mergePatch("SandboxConfig", "cluster", {
    status: {
      observedGeneration: gen,
      counts: { selected: n, ready: n, progressing: 0, degraded: 0, uninstalling: 0 },
      conditions: [{ type: "Ready", status: "True", reason: "AllNodesReady", message: `${n}/${n} nodes ready`, lastTransitionTime: now, observedGeneration: gen }],
    },
  }, { subresource: "status" });
  await sns.stop();
  process.stdout.write(JSON.stringify({ rssMiB: await peakRssMiB(process.pid) }) + "\n");
  client.close();
}
