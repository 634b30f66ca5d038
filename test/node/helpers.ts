// Shared set-up for node-tier tests: a host root, a NodeAgent wired to a private containerd, and
// a long-running runc pod to prove running sandboxes survive a restart.
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { NodeAgent, type NodeAgentOptions } from "../../src/agent/apply.js";
import type { CriClient } from "../../src/agent/cri/client.js";
import { commandRestarter } from "../../src/agent/restart.js";
import type { Containerd } from "../harness/containerd.js";
import { TEST_IMAGE } from "../harness/images.js";

export const hostRoot = () => mkdtempSync(join(tmpdir(), "sandbox-operator-host-"));
export const cleanup = (...dirs: string[]) => dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));

/** Every regular file under dir (symlinks followed: what a reader of the path gets). */
export function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .sort();
}

/** runsc here cannot run its own network stack on this kernel: sandboxes get loopback only. */
export const RUNSC_FLAGS = { network: "none" };

/** An agent on the runtime at `c.socket` (a private containerd or CRI-O), restarting it with `c.restartScript`. */
export function agentFor(c: Pick<Containerd, "socket" | "restartScript">, root: string, payloadDir: string | undefined, extra: Partial<NodeAgentOptions> = {}): NodeAgent {
  return new NodeAgent({
    hostRoot: root,
    criSocket: c.socket,
    payloadDir,
    restarter: commandRestarter(c.restartScript),
    configPrefix: root,
    runscFlags: RUNSC_FLAGS,
    verifyImage: TEST_IMAGE,
    log: pino({ level: process.env.AGENT_LOG ?? "warn" }),
    ...extra,
  });
}

/** Starts a pod (runc unless `handler` names another) whose container sleeps; returns its ids. */
export async function longRunningPod(cri: CriClient, root: string, name: string, handler = "runc"): Promise<{ pod: string; container: string }> {
  const sandboxConfig = {
    metadata: { name, uid: name, namespace: "node-test", attempt: 0 },
    hostname: "",
    log_directory: join(root, "podlogs", name),
    linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } },
  };
  const pod = await cri.runPodSandbox(sandboxConfig, handler);
  const container = await cri.createContainer(pod, { metadata: { name: "sleeper", attempt: 0 }, image: { image: TEST_IMAGE, user_specified_image: TEST_IMAGE }, command: ["/bin/sleep", "3600"], log_path: "sleeper.log", linux: { security_context: sandboxConfig.linux.security_context } }, sandboxConfig);
  await cri.startContainer(container);
  return { pod, container };
}
