// Proves a CRI handler works: runs a real pod sandbox + container through CRI with that handler,
// reads what kernel the container saw, and cleans up. Used after apply (our handlers) and revert (runc).
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { VERIFY_TOOLS_DIR } from "../manifests/names.js";
import type { Logger } from "pino";
import { CriError, type CriClient } from "./cri/client.js";

export const VERIFY_LABEL = "sandboxing.dev/verify";
export const VERIFY_NAMESPACE = "sandbox-operator-verify";

export interface VerifyOptions {
  cri: CriClient;
  handler: string;
  image: string;
  /** Log directory as this process sees it, and as the runtime sees it (differ under a host root). */
  logDir: { local: string; runtime: string };
  timeoutMs?: number;
}

/** The image a verification runs and how it is pulled (SandboxConfig spec.verification, resolved). */
export interface VerifyImage {
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  imagePullSecrets?: readonly string[];
}

export interface VerifyResult {
  handler: string;
  ok: boolean;
  /** `uname -r` inside the container. */
  kernel?: string;
  /** First line of the container's dmesg ("Starting gVisor..." under gVisor). */
  dmesg?: string;
  /** CRI error text or what the container printed when it failed. */
  message?: string;
  /** The verification image could not be pulled: the handler is unproven, not proven broken. */
  imagePull?: boolean;
  /** RunPodSandbox -> container exited, ms. */
  durationMs: number;
}

/** What a verification container runs (CRI and Pod verifiers alike): its kernel and first kernel-log line. */
export const VERIFY_SCRIPT = "echo kernel=$(uname -r); echo dmesg=$(dmesg 2>/dev/null | head -n 1)";
/**
 * The verification container runs `sh` found on this PATH: first the tools the operator image
 * carries for it (its default verification image, VERIFY_TOOLS_DIR), then the usual places, so
 * any image with a shell works.
 */
export const VERIFY_PATH = `${VERIFY_TOOLS_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
export const VERIFY_COMMAND = ["sh", "-c", VERIFY_SCRIPT];

/** Parses the CRI log format ("<time> stdout F <text>") into lines of text. */
export function parseCriLog(text: string): string[] {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const m = /^\S+ (?:stdout|stderr) [FP] (.*)$/.exec(l);
      return m ? m[1]! : l;
    });
}

export async function verifyHandler(o: VerifyOptions): Promise<VerifyResult> {
  const started = Date.now();
  const uid = randomBytes(6).toString("hex");
  const name = `verify-${o.handler}-${uid}`.slice(0, 63);
  const local = join(o.logDir.local, uid);
  mkdirSync(local, { recursive: true });
  const sandboxConfig = {
    metadata: { name, uid, namespace: VERIFY_NAMESPACE, attempt: 0 },
    // Host network needs no CNI, which a node being set up may not have yet; the hostname must then be empty.
    hostname: "",
    log_directory: join(o.logDir.runtime, uid),
    labels: { [VERIFY_LABEL]: "true" },
    linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } },
  };
  let podId: string | undefined;
  try {
    podId = await o.cri.runPodSandbox(sandboxConfig, o.handler);
    const cid = await o.cri.createContainer(
      podId,
      {
        metadata: { name: "verify", attempt: 0 },
        image: { image: o.image, user_specified_image: o.image },
        command: VERIFY_COMMAND,
        envs: [{ key: "PATH", value: VERIFY_PATH }],
        log_path: "verify.log",
        labels: { [VERIFY_LABEL]: "true" },
        // The sandbox's namespaces, as the kubelet sends them: CRI-O refuses a container whose
        // (default) pod-level PID namespace the sandbox does not have.
        linux: { security_context: { namespace_options: sandboxConfig.linux.security_context.namespace_options } },
      },
      sandboxConfig,
    );
    await o.cri.startContainer(cid);
    const deadline = Date.now() + (o.timeoutMs ?? 60_000);
    for (;;) {
      const st = await o.cri.containerStatus(cid);
      if (st.state === "CONTAINER_EXITED") {
        const lines = parseCriLog(readLog(join(local, "verify.log")));
        const kernel = lines.find((l) => l.startsWith("kernel="))?.slice(7).trim();
        const dmesg = lines.find((l) => l.startsWith("dmesg="))?.slice(6).trim();
        if (st.exit_code !== 0 || !kernel) {
          return { handler: o.handler, ok: false, kernel, dmesg, message: `verification container exited ${st.exit_code} (${st.reason} ${st.message}): ${lines.join(" | ").slice(0, 500)}`, durationMs: Date.now() - started };
        }
        return { handler: o.handler, ok: true, kernel, dmesg, durationMs: Date.now() - started };
      }
      if (Date.now() > deadline) {
        return { handler: o.handler, ok: false, message: `verification container did not exit within ${o.timeoutMs ?? 60_000} ms (state ${st.state})`, durationMs: Date.now() - started };
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  } catch (e) {
    const msg = e instanceof CriError ? e.message : `${(e as Error).message}`;
    return { handler: o.handler, ok: false, message: msg, durationMs: Date.now() - started };
  } finally {
    if (podId) {
      await o.cri.stopPodSandbox(podId).catch(() => undefined);
      await o.cri.removePodSandbox(podId).catch(() => undefined);
    }
    rmSync(local, { recursive: true, force: true });
  }
}

function readLog(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

/** Removes verification sandboxes a crashed agent left behind (they carry our label). */
export async function cleanupVerifySandboxes(cri: CriClient): Promise<number> {
  const pods = await cri.listPodSandbox({ [VERIFY_LABEL]: "true" });
  for (const p of pods) {
    await cri.stopPodSandbox(p.id).catch(() => undefined);
    await cri.removePodSandbox(p.id).catch(() => undefined);
  }
  return pods.length;
}

/** The verification image is not on the node and cannot be pulled. */
export class VerifyImageError extends Error {}

/** Through CRI the node pulls without pull secrets (there is no kubelet to hand them over). */
export async function ensureVerifyImage(cri: CriClient, v: VerifyImage, log: Logger): Promise<void> {
  const present = v.imagePullPolicy !== "Always" && (await cri.imageStatus(v.image));
  if (present) return;
  if (v.imagePullPolicy === "Never") throw new VerifyImageError(`the verification image ${v.image} is not on the node and spec.verification.imagePullPolicy is Never`);
  log.info({ image: v.image }, "pulling the verification image");
  try {
    await cri.pullImage(v.image);
  } catch (e) {
    throw new VerifyImageError(`the node cannot pull the verification image ${v.image} (${(e as Error).message}); mirror it where this node pulls from, or set spec.verification.image in the SandboxConfig`);
  }
}
