// Pod helpers for the cluster tier's suites: everything through the real kubectl, as a user would.
import { NAMESPACE } from "../../src/manifests/names.js";
import type { KubeCluster } from "../harness/kube-cluster.js";

export type ClusterHandle = () => KubeCluster;

export interface PodOptions {
  image?: string;
  command: string[];
  runtimeClassName?: string;
  labels?: Record<string, string>;
  volumes?: unknown[];
  volumeMounts?: unknown[];
  restartPolicy?: "Never" | "Always";
}

export function pod(name: string, c: KubeCluster, o: PodOptions): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: { app: name, ...o.labels } },
    spec: {
      runtimeClassName: o.runtimeClassName,
      restartPolicy: o.restartPolicy ?? "Never",
      terminationGracePeriodSeconds: 1,
      containers: [{ name: "main", image: o.image ?? c.images.busybox, command: o.command, volumeMounts: o.volumeMounts }],
      volumes: o.volumes,
    },
  };
}

export async function apply(c: KubeCluster, obj: unknown): Promise<void> {
  await c.kubectl(["apply", "-f", "-"], { input: JSON.stringify(obj) });
}

/** Waits for a pod phase (Running, Succeeded) with kubectl wait; on timeout the error carries describe output. */
export async function waitPhase(c: KubeCluster, name: string, phase: string, timeoutS = 90): Promise<void> {
  try {
    await c.kubectl(["wait", `pod/${name}`, `--for=jsonpath={.status.phase}=${phase}`, `--timeout=${timeoutS}s`], { timeoutMs: (timeoutS + 10) * 1000 });
  } catch (e) {
    const describe = await c.kubectl(["describe", `pod/${name}`]).catch((d: Error) => d.message);
    throw new Error(`pod ${name} not ${phase}: ${(e as Error).message}\n${describe}`, { cause: e });
  }
}

export async function getJson<T = Record<string, unknown>>(c: KubeCluster, ...args: string[]): Promise<T> {
  return JSON.parse(await c.kubectl(["get", ...args, "-o", "json"])) as T;
}

export async function logs(c: KubeCluster, name: string): Promise<string> {
  return c.kubectl(["logs", `pod/${name}`]);
}

/** Polls kubectl logs until `re` matches (a Running pod's output arrives after the phase flips). */
export async function logsMatching(c: KubeCluster, name: string, re: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    last = await logs(c, name).catch((e: Error) => e.message);
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`logs of ${name} never matched ${re}; last:\n${last}`);
}

export async function deletePods(c: KubeCluster, ...names: string[]): Promise<void> {
  await c.kubectl(["delete", "pod", ...names, "--ignore-not-found", "--wait=true", "--timeout=60s"], { timeoutMs: 70_000 });
}

/** What the operator's pods, the SandboxNodes and the agent's log say (and `extra`), for a failed wait's message. */
export async function operatorDiag(c: KubeCluster, ...extra: Array<Promise<string>>): Promise<string> {
  const out = await Promise.all([
    c.kubectl(["-n", NAMESPACE, "get", "pods", "-o", "wide"]).catch((e: Error) => e.message),
    c.kubectl(["get", "sandboxnodes", "-o", "yaml"]).catch((e: Error) => e.message),
    c.kubectl(["-n", NAMESPACE, "logs", "-l", "app.kubernetes.io/component=agent", "--tail=40"]).catch((e: Error) => e.message),
    ...extra,
  ]);
  return out.join("\n");
}
