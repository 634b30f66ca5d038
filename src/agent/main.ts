// Process entry of the node agent (DaemonSet pod or a test): parses flags, builds the NodeAgent
// and its restart strategy, serves /healthz, and runs the SandboxNode loop until SIGTERM.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, Option } from "commander";
import { logger, setLogLevel } from "../telemetry/logger.js";
import { loadKubeConfig } from "../kube/kubeconfig.js";
import { KubeClient } from "../kube/client.js";
import { repoRoot } from "../manifests/image-lock.js";
import { NAMESPACE } from "../manifests/names.js";
import { NodeAgent, type HandlerVerifier } from "./apply.js";
import { cleanupVerifyPods, verifyHandlerWithPod } from "./verify-pod.js";
import { AgentLoop } from "./loop.js";
import { serveHealth } from "./health-server.js";
import { DEFAULT_HEALTH_LIMITS } from "./policy-health.js";
import { commandRestarter, noRestarter, systemdRestarter, type Restarter } from "./restart.js";

// The package.json above this module, whether it runs from src/ (tsx), dist/src/ or the image's /app.
const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(join(repoRoot(), "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
})();

const program = new Command("sandbox-agent")
  .description("sandbox-operator node agent: configures this node's CRI runtime for Kata/gVisor and reports to its SandboxNode")
  .option("--node-name <name>", "this node's name (= its SandboxNode)", process.env.NODE_NAME)
  .option("--host-root <dir>", "where the host's filesystem is mounted", "/host")
  .option("--kubeconfig <path>", "kubeconfig (default: in-cluster service account or $KUBECONFIG)")
  .option("--cri-socket <path>", "CRI socket as this process sees it (default: the kubelet's containerd found in /proc, else the well-known sockets under the host root)")
  .option("--containerd-config <path>", "containerd config.toml to edit, as a host path (default: the --config of the containerd process serving CRI, else /etc/containerd/config.toml)")
  .addOption(new Option("--restart-strategy <s>", "how to restart the CRI runtime").choices(["systemd", "command", "none"]).default("systemd"))
  .option("--restart-command <argv>", "program and arguments for --restart-strategy=command, split on spaces, no shell ($SANDBOX_RUNTIME names the runtime)")
  .option("--runtime-unit <unit>", "systemd unit of the CRI runtime (default: containerd or crio; e.g. k3s, rke2-server)")
  .option("--host-pid <pid>", "host process whose mount and PID namespaces host commands run in (needs hostPID)", "1")
  .option("--health-port <port>", "port for /healthz (0 = off)", "8081")
  .option("--watch-dead-after <seconds>", "/healthz fails once the SandboxNode watch has been down this long", String(DEFAULT_HEALTH_LIMITS.watchDeadAfterMs / 1000))
  .option("--pass-stuck-after <seconds>", "/healthz fails once one apply/revert pass has run this long (a long apply alone never fails it)", String(DEFAULT_HEALTH_LIMITS.passStuckAfterMs / 1000))
  .option("--retry-backoff <seconds>", "first wait before retrying after a failed runtime restart (doubles, up to 10 minutes)", "30")
  .option("--drift-check-seconds <seconds>", "how often a verified node re-checks that the runtime config still holds our handlers and the runtime lists them (0 = never; at most 86400)", "180")
  .option("--payload-dir <dir>", "runsc + containerd-shim-runsc-v1 this agent installs on the host", process.env.SANDBOX_PAYLOAD_DIR)
  .option("--gvisor-payload <image>", "default gVisor payload image (repository@sha256:...) installed under /opt/sandbox-operator/gvisor/<digest>/; SandboxConfig spec.payloads.gvisor overrides it")
  .option("--config-prefix <dir>", "prefix for host paths written into runtime configs (tests)", "")
  .option("--runsc-flag <key=value...>", "runsc flag for every gVisor sandbox (runsc.toml [runsc_config])", [])
  .requiredOption("--verify-image <ref>", "default image of the verification container (needs sh, uname, dmesg; the DaemonSet passes the agent's own image, pinned by digest); SandboxConfig spec.verification.image overrides it")
  .addOption(new Option("--verify-with <how>", "prove handlers with Pods through the kubelet (clusters), or with sandboxes made directly through CRI (a node without a kubelet: the local demo, node tests)").choices(["pod", "cri"]).default("pod"))
  .option("--namespace <ns>", "namespace of the verification Pods (the agent's own)", process.env.POD_NAMESPACE ?? NAMESPACE)
  .option("--containerd-binary <path>", "containerd used for `config default` when config.toml is missing")
  .option("--log-level <level>", "log level", process.env.LOG_LEVEL ?? "info");

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    nodeName?: string;
    hostRoot: string;
    kubeconfig?: string;
    criSocket?: string;
    containerdConfig?: string;
    restartStrategy: "systemd" | "command" | "none";
    restartCommand?: string;
    runtimeUnit?: string;
    hostPid: string;
    healthPort: string;
    watchDeadAfter: string;
    passStuckAfter: string;
    retryBackoff: string;
    driftCheckSeconds: string;
    payloadDir?: string;
    gvisorPayload?: string;
    configPrefix: string;
    runscFlag: string[];
    verifyImage: string;
    verifyWith: "pod" | "cri";
    namespace: string;
    containerdBinary?: string;
    logLevel: string;
  }>();
  // The shared logger: the same line format (ISO time, pid, component) as the controller and the webhook.
  const log = logger("agent", { node: o.nodeName });
  setLogLevel(o.logLevel);
  if (!o.nodeName) throw new Error("--node-name is required (or set NODE_NAME from the downward API)");
  const hostPid = Number(o.hostPid);
  if (!Number.isInteger(hostPid) || hostPid < 1) throw new Error(`--host-pid ${o.hostPid}: expected a process id (1 = the host's init)`);
  const healthLimits = { watchDeadAfterMs: seconds("--watch-dead-after", o.watchDeadAfter), passStuckAfterMs: seconds("--pass-stuck-after", o.passStuckAfter) };
  const retryBaseMs = Number(o.retryBackoff) * 1000;
  if (!(retryBaseMs > 0)) throw new Error(`--retry-backoff ${o.retryBackoff}: expected a number of seconds > 0`);
  const driftS = Number(o.driftCheckSeconds);
  if (!(driftS === 0 || (driftS >= 1 && driftS <= 86_400))) throw new Error(`--drift-check-seconds ${o.driftCheckSeconds}: expected 0 (off) or a number of seconds from 1 to 86400 (default 180)`);
  let restarter: Restarter;
  if (o.restartStrategy === "command") {
    if (!o.restartCommand) throw new Error("--restart-strategy=command needs --restart-command");
    restarter = commandRestarter(o.restartCommand);
  } else restarter = o.restartStrategy === "none" ? noRestarter : systemdRestarter({ hostPid, unit: o.runtimeUnit });
  const runscFlags = Object.fromEntries(
    o.runscFlag.map((kv) => {
      const i = kv.indexOf("=");
      if (i < 1) throw new Error(`--runsc-flag ${kv}: expected key=value, e.g. network=none`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
  const kube = await KubeClient.fromKubeConfig(loadKubeConfig(o.kubeconfig), { fieldManager: "sandbox-operator-agent", userAgent: `sandbox-operator-agent/${VERSION}` });
  const nodeName = o.nodeName;
  const podOpts = { kube, namespace: o.namespace, nodeName, image: o.verifyImage };
  const verifier: HandlerVerifier | undefined =
    o.verifyWith === "pod" ? { name: "pod", verify: (h, image) => verifyHandlerWithPod({ ...podOpts, ...image }, h), cleanup: () => cleanupVerifyPods(podOpts) } : undefined;
  const agent = new NodeAgent({
    hostRoot: o.hostRoot,
    criSocket: o.criSocket,
    containerdConfig: o.containerdConfig,
    payloadDir: o.payloadDir,
    gvisorPayload: o.gvisorPayload,
    restarter,
    configPrefix: o.configPrefix || undefined,
    runscFlags,
    verifyImage: o.verifyImage,
    verifier,
    containerdBinary: o.containerdBinary,
    hostPid,
    log,
  });
  const loop = new AgentLoop({ kube, nodeName: o.nodeName, agent, log, agentVersion: VERSION, retryBaseMs, driftMs: driftS * 1000 });
  const port = Number(o.healthPort);
  const server = port > 0 ? serveHealth(loop, port, healthLimits, log) : undefined;
  const stop = () => {
    log.info("stopping");
    loop.stop();
    server?.close();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  log.info({ version: VERSION, hostRoot: o.hostRoot, restart: restarter.name, hostPid, unit: o.runtimeUnit, verifyWith: o.verifyWith, payload: o.payloadDir, gvisorPayload: o.gvisorPayload }, "agent starting");
  await loop.run();
  kube.close();
}

function seconds(flag: string, value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new Error(`${flag} ${value}: expected a number of seconds > 0`);
  return n * 1000;
}

main().catch((e: Error) => {
  process.stderr.write(`sandbox-agent: ${e.message}\n`);
  process.exit(1);
});
