// Process entry of the controller: flags, kube client, /metrics + /healthz + /readyz, leader
// election on a Lease, the reconcilers while leading, and an orderly stop on SIGTERM/SIGINT.
import { hostname } from "node:os";
import { Command, InvalidArgumentError } from "commander";
import { loadKubeConfig } from "../kube/kubeconfig.js";
import { KubeClient } from "../kube/client.js";
import { LeaderElector } from "../kube/leader.js";
import { logger, setLogLevel } from "../telemetry/logger.js";
import { newRegistry } from "../telemetry/metrics.js";
import { startHttpServer, type HttpServer } from "../telemetry/http.js";
import { Controller } from "./manager.js";

const FIELD_MANAGER = "sandbox-operator";
const LEASE_NAME = "sandbox-operator-controller";

const int = (what: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${what} must be a whole number >= 0, got ${v}`);
  return n;
};

export function parseFlags(argv: string[]) {
  return new Command("sandbox-operator-controller")
    .description("Reconciles SandboxConfig into verified nodes, RuntimeClasses and status.")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    .option("--namespace <ns>", "operator namespace (Lease, Events)", process.env.POD_NAMESPACE ?? "sandbox-operator-system")
    .option("--metrics-port <port>", "port for /metrics; 0 = off", int("--metrics-port"), 8080)
    .option("--health-port <port>", "port for /healthz and /readyz", int("--health-port"), 8081)
    .option("--leader-elect <bool>", "elect a leader through a Lease (true|false)", (v) => v !== "false", true)
    .option("--lease-duration-seconds <s>", "lease validity without renewal; takeover happens within about this", int("--lease-duration-seconds"), 15)
    .option("--identity <id>", "this replica's name in the Lease", process.env.POD_NAME ?? `${hostname()}-${process.pid}`)
    .option("--log-level <level>", "debug|info|warn|error", process.env.SANDBOX_LOG_LEVEL ?? "info")
    .option("--resync-seconds <s>", "full relist of every cache this often; 0 = never (watches resume from their last resourceVersion)", int("--resync-seconds"), 0)
    .option("--pod-recheck-ms <ms>", "recheck interval while pods hold an uninstall", int("--pod-recheck-ms"), 5000)
    .parse(argv, { from: "user" })
    .opts<{ kubeconfig?: string; namespace: string; metricsPort: number; healthPort: number; leaderElect: boolean; leaseDurationSeconds: number; identity: string; logLevel: string; resyncSeconds: number; podRecheckMs: number }>();
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const log = logger("main");
  setLogLevel(flags.logLevel);
  const client = await KubeClient.fromKubeConfig(loadKubeConfig(flags.kubeconfig), { fieldManager: FIELD_MANAGER });
  const registry = newRegistry();
  const controller = new Controller({ client, namespace: flags.namespace, registry, informer: { resyncMs: flags.resyncSeconds * 1000 }, podRecheckMs: flags.podRecheckMs });
  const abort = new AbortController();
  const elector = flags.leaderElect ? new LeaderElector(client, { namespace: flags.namespace, name: LEASE_NAME, identity: flags.identity, leaseDurationMs: flags.leaseDurationSeconds * 1000 }) : undefined;

  const servers: HttpServer[] = [];
  // A standby replica is ready (it can take over); readiness does not mean "leading".
  const ready = () => (elector && !elector.isLeader ? true : controller.ready);
  if (flags.healthPort) servers.push(await startHttpServer({ port: flags.healthPort, ready, ...(flags.metricsPort === flags.healthPort ? { registry } : {}) }));
  if (flags.metricsPort && flags.metricsPort !== flags.healthPort) servers.push(await startHttpServer({ port: flags.metricsPort, registry, ready }));

  let stopping = false;
  const shutdown = async (why: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, "shutting down");
    abort.abort();
    await controller.stop();
    await elector?.release();
    await Promise.all(servers.map((s) => s.close()));
    client.close();
    log.info("stopped");
    process.exit(code);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM", 0));
  process.once("SIGINT", () => void shutdown("SIGINT", 0));

  log.info({ identity: flags.identity, namespace: flags.namespace, leaderElect: flags.leaderElect }, "controller starting");
  if (!elector) {
    await controller.start(abort.signal);
    return;
  }
  const outcome = await elector.run(abort.signal, () => {
    controller.start(abort.signal).catch((e: Error) => {
      log.error({ err: e.message }, "controller failed to start");
      void shutdown("start failed", 1);
    });
  });
  // Losing the lease means another replica may act now: stop at once, the Deployment restarts us.
  if (outcome === "lost") await shutdown("lost leadership", 1);
}

main().catch((e: Error) => {
  logger("main").fatal({ err: e.message, stack: e.stack }, "controller exited");
  process.exit(1);
});
