// Proves a handler works on a node the kubelet runs: a real Pod bound to this node with the
// handler's verification RuntimeClass, its log read through the API, then deleted. Sandboxes made
// directly through CRI are killed by the kubelet's housekeeping as orphans (docs/adr/0004).
import { randomBytes } from "node:crypto";
import type { AnyObject, KubeClient, KubeObject } from "../kube/client.js";
import { verifyClassName } from "../render/desired-runtimeclasses.js";
import { VERIFY_COMMAND, VERIFY_LABEL, VERIFY_PATH, type VerifyImage, type VerifyResult } from "./verify.js";

/** Label naming the node a verification Pod runs on, so an agent finds (and cleans) only its own. */
export const VERIFY_NODE_LABEL = "sandboxing.dev/verify-node";

export interface PodVerifyOptions extends VerifyImage {
  kube: KubeClient;
  namespace: string;
  nodeName: string;
  /** How long a Pod may take from create to finished (image pull included). */
  timeoutMs?: number;
  pollMs?: number;
}

interface ContainerState {
  waiting?: { reason?: string; message?: string };
  terminated?: { exitCode?: number; reason?: string; message?: string };
}

interface PodObject extends KubeObject {
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    containerStatuses?: Array<{ name: string; state?: ContainerState }>;
  };
}

interface EventObject extends KubeObject {
  type?: string;
  reason?: string;
  message?: string;
  involvedObject?: { uid?: string };
}

/** Waiting reasons that mean the node cannot get the verification image. */
const IMAGE_PULL = new Set(["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]);
/** Waiting reasons that will not clear by themselves: report them at once instead of timing out. */
const STUCK = new Set([...IMAGE_PULL, "CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);
/** Kubelet events that mean the handler itself is broken (no such runtime, shim failed). */
const FATAL_EVENTS = new Set(["FailedCreatePodSandBox"]);
/**
 * The runtime itself unreachable: right after the agent restarts containerd the kubelet's CRI
 * connection lags and its first sandbox attempt fails so; the kubelet retries by itself.
 */
const TRANSIENT = /rpc error: code = (Unavailable|DeadlineExceeded)/;

/** Handler "" is the runtime's default (runc): a Pod without runtimeClassName. */
export function verifyPod(o: PodVerifyOptions, handler: string): AnyObject {
  const uid = randomBytes(4).toString("hex");
  const cls = handler ? verifyClassName(handler) : undefined;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `sandbox-verify-${handler || "default"}-${uid}`.slice(0, 63).replace(/-+$/, ""),
      namespace: o.namespace,
      labels: { [VERIFY_LABEL]: "true", [VERIFY_NODE_LABEL]: o.nodeName, "app.kubernetes.io/managed-by": "sandbox-operator" },
    },
    spec: {
      nodeName: o.nodeName,
      ...(cls ? { runtimeClassName: cls } : {}),
      restartPolicy: "Never",
      // Verification must run wherever the agent runs, tainted nodes included.
      tolerations: [{ operator: "Exists" }],
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 1,
      ...(o.imagePullSecrets?.length ? { imagePullSecrets: o.imagePullSecrets.map((name) => ({ name })) } : {}),
      containers: [
        {
          name: "verify",
          image: o.image,
          imagePullPolicy: o.imagePullPolicy ?? "IfNotPresent",
          command: VERIFY_COMMAND,
          env: [{ name: "PATH", value: VERIFY_PATH }],
          resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
        },
      ],
    },
  };
}

/** Parses the verification script's output (kernel=..., dmesg=...). */
export function parseVerifyOutput(text: string): { kernel?: string; dmesg?: string } {
  const lines = text.split("\n");
  return {
    kernel: lines.find((l) => l.startsWith("kernel="))?.slice(7).trim() || undefined,
    dmesg: lines.find((l) => l.startsWith("dmesg="))?.slice(6).trim() || undefined,
  };
}

/** Why a Pod that has not finished cannot finish (and whether it is the image), or undefined while it still may. */
export function stuckReason(pod: PodObject, events: EventObject[]): { text: string; imagePull: boolean } | undefined {
  for (const cs of pod.status?.containerStatuses ?? []) {
    const w = cs.state?.waiting;
    if (w?.reason && STUCK.has(w.reason)) return { text: `${w.reason}: ${w.message ?? ""}`.trim(), imagePull: IMAGE_PULL.has(w.reason) };
  }
  const fatal = events.filter((e) => e.type === "Warning" && FATAL_EVENTS.has(e.reason ?? "") && !TRANSIENT.test(e.message ?? "")).pop();
  return fatal ? { text: `${fatal.reason}: ${fatal.message ?? ""}`, imagePull: false } : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads a finished Pod's log: ok with the kernel it saw, or why not. */
async function finished(o: PodVerifyOptions, pod: PodObject, name: string): Promise<[boolean, Partial<VerifyResult>]> {
  const log = await o.kube.raw("GET", `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(name)}/log?container=verify`);
  const text = log.status === 200 ? log.body : "";
  const { kernel, dmesg } = parseVerifyOutput(text);
  const phase = pod.status?.phase;
  if (phase === "Succeeded" && kernel) return [true, { kernel, dmesg }];
  const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const why = term ? `exit ${term.exitCode} (${term.reason ?? ""} ${term.message ?? ""})` : `${pod.status?.reason ?? ""} ${pod.status?.message ?? ""}`;
  return [false, { kernel, dmesg, message: `verification Pod ${o.namespace}/${name} ${phase}: ${why.trim()}: ${text.trim().slice(0, 400)}` }];
}

export async function verifyHandlerWithPod(o: PodVerifyOptions, handler: string): Promise<VerifyResult> {
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? 120_000;
  const res = (ok: boolean, extra: Partial<VerifyResult>): VerifyResult => ({ handler, ok, durationMs: Date.now() - started, ...extra });
  let name: string | undefined;
  try {
    const created = await o.kube.create<PodObject>(verifyPod(o, handler) as unknown as PodObject);
    name = created.metadata.name;
    const uid = created.metadata.uid;
    for (;;) {
      const pod = await o.kube.get<PodObject>("Pod", name, o.namespace);
      const phase = pod.status?.phase;
      if (phase === "Succeeded" || phase === "Failed") return res(...(await finished(o, pod, name)));
      const events = await o.kube.list<EventObject>("Event", { namespace: o.namespace, fieldSelector: `involvedObject.uid=${uid}` }).then((l) => l.items, () => []);
      const stuck = stuckReason(pod, events);
      if (stuck?.imagePull) {
        return res(false, { imagePull: true, message: `node ${o.nodeName} cannot pull the verification image ${o.image} (${stuck.text}); mirror it where this node pulls from, or set spec.verification.image (and imagePullSecrets) in the SandboxConfig` });
      }
      if (stuck) return res(false, { message: `verification Pod ${o.namespace}/${name} on ${o.nodeName} cannot run: ${stuck.text}` });
      if (Date.now() - started > timeoutMs) {
        return res(false, { message: `verification Pod ${o.namespace}/${name} did not finish within ${timeoutMs} ms (phase ${phase ?? "unknown"}); kubectl -n ${o.namespace} describe pod ${name}` });
      }
      await sleep(o.pollMs ?? 250);
    }
  } catch (e) {
    return res(false, { message: `verification Pod for handler ${handler || "(default)"}: ${(e as Error).message}` });
  } finally {
    if (name) await o.kube.delete("Pod", name, o.namespace).catch(() => undefined);
  }
}

/** Deletes verification Pods of this node that a crashed agent left behind. */
export async function cleanupVerifyPods(o: Pick<PodVerifyOptions, "kube" | "namespace" | "nodeName">): Promise<number> {
  const pods = await o.kube.list<PodObject>("Pod", { namespace: o.namespace, labelSelector: `${VERIFY_LABEL}=true,${VERIFY_NODE_LABEL}=${o.nodeName}` });
  for (const p of pods.items) await o.kube.delete("Pod", p.metadata.name, o.namespace).catch(() => undefined);
  return pods.items.length;
}
