// Shared set-up for the admission integration tests: a SandboxConfig, our and foreign
// RuntimeClasses, namespaces per mode, the webhook started in-process, and pod helpers.
import { pino } from "pino";
import { KubeClient, warningsOf, type AnyObject, type KubeObject } from "../../src/kube/client.js";
import { startWebhook, type RunningWebhook } from "../../src/admission/server.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL, type Pod } from "../../src/admission/policy.js";
import { DEFAULT_SERVICE_NAME } from "../../src/admission/desiredWebhooks.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import { freePort } from "../harness/controlplane.js";
import { eventually, installCrds } from "../harness/cluster.js";

export const OPERATOR_NS = "sandbox-operator-system";
export const NS = { enforce: "team-enforce", audit: "team-audit", off: "team-off" } as const;

export const configSpec = (): SandboxConfigSpec =>
  ({
    nodeSelector: {},
    runtimes: { allowed: ["gvisor", "kata-qemu"], preferred: ["kata-qemu", "gvisor"] },
    variants: [{ name: "kata-big", backend: "kata-qemu", vcpus: 4, memory: "4Gi" }],
    allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor.default_vcpus"],
  }) as SandboxConfigSpec;

export const runtimeClass = (name: string, managed = true): AnyObject => ({
  apiVersion: "node.k8s.io/v1",
  kind: "RuntimeClass",
  metadata: { name, labels: managed ? { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } : {} },
  handler: name,
});

export const namespace = (name: string, mode?: string): AnyObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: mode ? { [POLICY_LABEL]: mode } : {} } });

/** CRDs, the operator namespace, SandboxConfig `cluster`, RuntimeClasses (ours + foreign `runc`, `kata-clh`), one namespace per mode. */
export async function setupCluster(client: KubeClient, spec: SandboxConfigSpec = configSpec()): Promise<void> {
  await installCrds(client);
  for (const ns of [namespace(OPERATOR_NS), namespace(NS.enforce, "enforce"), namespace(NS.audit, "audit"), namespace(NS.off)]) await client.apply(ns);
  for (const rc of ["sandboxed", "gvisor", "kata", "kata-big"]) await client.apply(runtimeClass(rc));
  // Foreign classes: the built-in RuntimeClass admission refuses pods naming a class that does not exist.
  for (const rc of ["runc", "kata-clh"]) await client.apply(runtimeClass(rc, false));
  await client.apply({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec } as unknown as AnyObject);
}

export const testLog = () => pino({ level: process.env.LOG_LEVEL ?? "warn" });

export async function startTestWebhook(client: KubeClient, extra: { tickMs?: number; propagationMs?: number; certSource?: "self" | "cert-manager" } = {}): Promise<RunningWebhook & { url: string }> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const webhook = await startWebhook({ client, log: testLog(), namespace: OPERATOR_NS, serviceName: DEFAULT_SERVICE_NAME, port, host: "127.0.0.1", url, certSource: extra.certSource ?? "self", tickMs: extra.tickMs ?? 60_000, propagationMs: extra.propagationMs ?? 1000 });
  return Object.assign(webhook, { url });
}

export function pod(name: string, ns: string, spec: Partial<Pod["spec"]> = {}, annotations?: Record<string, string>): Pod & AnyObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, ...(annotations ? { annotations } : {}) },
    spec: { containers: [{ name: "app", image: "registry.example/app:1" }], ...spec },
  } as Pod & AnyObject;
}

export interface CreateResult {
  status: number;
  obj?: Pod & KubeObject;
  message?: string;
  warnings: string[];
}

/** POSTs a pod and returns the status, stored object or refusal message, and the Warning headers. */
export async function createPod(client: KubeClient, p: Pod & AnyObject, dryRun = false): Promise<CreateResult> {
  const path = client.path({ group: "", version: "v1", plural: "pods", namespaced: true }, undefined, p.metadata.namespace, undefined, { dryRun: dryRun ? "All" : undefined });
  const r = await client.raw("POST", path, p);
  const body = JSON.parse(r.body) as Pod & KubeObject & { message?: string };
  const ok = r.status >= 200 && r.status < 300;
  return { status: r.status, obj: ok ? body : undefined, message: ok ? undefined : body.message, warnings: warningsOf(r.headers) };
}

/** Waits until the apiserver calls the webhook for enforce namespaces (configurations are read asynchronously). */
export async function waitWebhookActive(client: KubeClient, ns: string = NS.enforce): Promise<void> {
  await eventually(`webhook active in ${ns}`, async () => (await createPod(client, pod(`probe-${Date.now()}`, ns), true)).obj?.spec.runtimeClassName === "sandboxed", 30_000, 200);
}

/**
 * Waits until the apiserver calls the webhook at all, with or without a SandboxConfig: a pod with a
 * sandbox annotation is refused in every namespace the policy covers.
 */
export async function waitWebhookServing(client: KubeClient, ns: string = NS.enforce): Promise<void> {
  await eventually(`webhook serving in ${ns}`, async () => /reconfigure the sandbox/.test((await createPod(client, pod(`probe-${Date.now()}`, ns, {}, { "dev.gvisor.probe": "1" }), true)).message ?? ""), 30_000, 200);
}

/**
 * Stops what a webhook test file started, in order, and stops the control plane even when an
 * earlier step throws: a control plane left running keeps the test file alive until its timeout.
 */
export async function stopWebhookEnv(parts: { webhook?: { stop(): Promise<void> }; webhookClient?: KubeClient; client?: KubeClient; cp?: { stop(): Promise<void> } }): Promise<void> {
  try {
    await parts.webhook?.stop();
  } finally {
    parts.webhookClient?.close();
    parts.client?.close();
    await parts.cp?.stop();
  }
}
