// Helpers for integration tests on the real control plane: install CRDs and wait until they
// are served, wait for conditions, make Nodes.
import { crds } from "../../src/manifests/crds.js";
import { KubeClient, type AnyObject, type KubeObject } from "../../src/kube/client.js";

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
}

export async function installCrds(client: KubeClient, objects: KubeObject[] = crds() as unknown as KubeObject[]): Promise<void> {
  for (const crd of objects) await client.apply(crd);
  for (const crd of objects) {
    await eventually(`CRD ${crd.metadata.name} Established`, async () => {
      const got = await client.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>("CustomResourceDefinition", crd.metadata.name);
      return got.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
    });
  }
}

export function node(name: string, labels: Record<string, string> = {}): AnyObject {
  return { apiVersion: "v1", kind: "Node", metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", ...labels } }, spec: {} };
}
