// Shared set-up for the controller integration tests: one real control plane per file, the
// controller in-process (or as a child via tsx) with short timings, simulated agents, cleanup.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Registry } from "prom-client";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import { Controller } from "../../src/controller/manager.js";
import { FINALIZER } from "../../src/controller/config-status.js";
import type { SandboxConfig, SandboxConfigSpec, SandboxNode } from "../../src/api/index.js";
import { setLogLevel } from "../../src/telemetry/logger.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds, node } from "../harness/cluster.js";
import { SimulatedAgent, type SimulatedAgentOptions } from "../harness/simulated-agent.js";

export const NS = "sandbox-operator-system";
export type Config = SandboxConfig & KubeObject;
export type SNode = SandboxNode & KubeObject;

export interface Env {
  cp: Awaited<ReturnType<typeof testControlPlane>>;
  client: KubeClient;
  stop(): Promise<void>;
}

export async function setupEnv(): Promise<Env> {
  setLogLevel(process.env.SANDBOX_LOG_LEVEL ?? "warn");
  const cp = await testControlPlane();
  const client = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "test-admin" });
  await installCrds(client);
  if (!(await client.getOrNull("Namespace", NS))) await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } } as AnyObject);
  if (!(await client.getOrNull("Namespace", "default"))) await client.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "default" } } as AnyObject);
  return {
    cp,
    client,
    async stop() {
      client.close();
      await cp.stop();
    },
  };
}

export async function startController(env: Env, registry?: Registry): Promise<{ controller: Controller; client: KubeClient; stop(): Promise<void> }> {
  const client = await KubeClient.fromKubeConfig(env.cp.kubeConfig(), { fieldManager: "sandbox-operator" });
  const controller = new Controller({ client, namespace: NS, registry, podRecheckMs: 300, statusIntervalMs: 100, retryBaseMs: 100, retryMaxMs: 2000 });
  await controller.start();
  return {
    controller,
    client,
    async stop() {
      await controller.stop();
      client.close();
    },
  };
}

/** The controller as its own process (tsx), the way it runs in a Pod. */
export function spawnController(env: Env, identity: string, extra: string[] = []): ChildProcess & { logPath: string } {
  const logPath = join(env.cp.cp?.dir ?? "/tmp", `controller-${identity}.log`);
  const fd = openSync(logPath, "a");
  const child = spawn(process.execPath, ["--import", "tsx", "src/controller/main.ts", "--kubeconfig", env.cp.kubeconfigPath, "--namespace", NS, "--metrics-port", "0", "--health-port", "0", "--identity", identity, "--lease-duration-seconds", "3", "--pod-recheck-ms", "300", ...extra], {
    stdio: ["ignore", fd, fd],
    env: { ...process.env, SANDBOX_LOG_LEVEL: "debug" },
  });
  closeSync(fd);
  return Object.assign(child, { logPath });
}

export function logOf(child: { logPath: string }): string {
  try {
    return readFileSync(child.logPath, "utf8");
  } catch {
    return "";
  }
}

export async function killHard(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/** Simulated agents that, like the DaemonSet, run only on Nodes carrying the agent label. */
export async function startAgent(env: Env, opts: SimulatedAgentOptions = {}): Promise<SimulatedAgent> {
  return SimulatedAgent.start(env.cp.kubeConfig(), { requireAgentLabel: true, ...opts });
}

export async function createNodes(client: KubeClient, names: string[], labels: Record<string, string> = {}): Promise<void> {
  for (const n of names) await client.create(node(n, labels));
}

export function configObject(spec: Partial<SandboxConfigSpec>): AnyObject {
  return { apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor"] }, ...spec } };
}

export const getConfig = (client: KubeClient) => client.getOrNull<Config>("SandboxConfig", "cluster");
export const cond = (c: Config | null, type: string) => c?.status?.conditions?.find((x) => x.type === type);

export async function waitReady(client: KubeClient, n: number, timeoutMs = 30_000): Promise<Config> {
  return eventually(`SandboxConfig Ready ${n}/${n}`, async () => {
    const c = await getConfig(client);
    const ready = cond(c, "Ready");
    return ready?.status === "True" && c!.status?.counts?.ready === n && c!.status?.counts?.selected === n && c!.status.observedGeneration === c!.metadata.generation ? c : null;
  }, timeoutMs);
}

/** The Node's sandboxing.dev/runtime.* labels (what RuntimeClasses select). */
export async function runtimeLabels(client: KubeClient, name: string): Promise<Record<string, string>> {
  const n = await client.get<KubeObject>("Node", name);
  return Object.fromEntries(Object.entries(n.metadata.labels ?? {}).filter(([k]) => k.startsWith("sandboxing.dev/runtime.")));
}

/** Every sandboxing.dev/ label on the Node: runtime labels and the agent label (AGENT_NODE_LABEL). */
export async function ourNodeLabels(client: KubeClient, name: string): Promise<Record<string, string>> {
  const n = await client.get<KubeObject>("Node", name);
  return Object.fromEntries(Object.entries(n.metadata.labels ?? {}).filter(([k]) => k.startsWith("sandboxing.dev/")));
}

export const AGENT_LABEL = { "sandboxing.dev/agent": "true" } as const;

/** Deletes the config, waits for the controller's uninstall to finish, removes nodes and pods. */
export async function resetCluster(client: KubeClient, timeoutMs = 30_000): Promise<void> {
  const pods = await client.list<KubeObject>("Pod", { namespace: "default" });
  for (const p of pods.items) await deletePodNow(client, p.metadata.name);
  await client.delete("SandboxConfig", "cluster");
  await eventually("SandboxConfig gone", async () => (await getConfig(client)) === null, timeoutMs);
  const nodes = await client.list<KubeObject>("Node");
  for (const n of nodes.items) await client.delete("Node", n.metadata.name);
  // No garbage collector runs here: SandboxNodes owned by deleted Nodes are removed by the controller.
  await eventually("no SandboxNodes left", async () => (await client.list("SandboxNode")).items.length === 0, timeoutMs);
}

/** No kubelet here: a bound Pod is only removed at once with gracePeriodSeconds 0. */
export async function deletePodNow(client: KubeClient, name: string, namespace = "default"): Promise<void> {
  await client.call("DELETE", client.path({ group: "", version: "v1", plural: "pods", namespaced: true }, name, namespace), { apiVersion: "v1", kind: "DeleteOptions", gracePeriodSeconds: 0 }).catch((e: { status?: number }) => {
    if (e.status !== 404) throw e;
  });
}

export function sandboxedPod(name: string, nodeName: string, runtimeClassName = "sandboxed"): AnyObject {
  return { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "default" }, spec: { nodeName, runtimeClassName, containers: [{ name: "app", image: "registry.invalid/app:1" }] } };
}

export { eventually, FINALIZER };
