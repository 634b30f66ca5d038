// Entry point of the admission webhook process: parses flags, connects to the apiserver and runs
// the HTTPS webhook until SIGTERM/SIGINT.
import { Command, Option } from "commander";
import { pino } from "pino";
import { loadKubeConfig } from "../kube/kubeconfig.js";
import { KubeClient } from "../kube/client.js";
import { startWebhook } from "./server.js";
import { DEFAULT_NAMESPACE, DEFAULT_SERVICE_NAME } from "./desiredWebhooks.js";

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port number: ${v}`);
  return n;
};

const program = new Command("sandbox-operator-webhook")
  .description("Admission webhook of sandbox-operator: pod sandboxing policy and SandboxConfig validation")
  .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
  .option("--namespace <ns>", "operator namespace (exempt from the policy; holds the CA Secret)", DEFAULT_NAMESPACE)
  .option("--port <port>", "HTTPS port for AdmissionReviews", int, 9443)
  .option("--bind-address <ip>", "address to listen on", "0.0.0.0")
  .option("--health-port <port>", "plain-HTTP port for /healthz and /readyz", int)
  .option("--service-name <name>", "Service in front of the webhook (certificate SANs, webhook clientConfig)", DEFAULT_SERVICE_NAME)
  .addOption(new Option("--cert-source <source>", "self: CA in a Secret, serving cert issued and rotated here; cert-manager: read the Certificate's Secret").choices(["self", "cert-manager"]).default("self"))
  .option("--url <url>", "register the webhooks at this base URL instead of the Service (out-of-cluster runs, tests)")
  .option("--no-manage-configurations", "do not write the webhook configurations (caBundle, selectors)")
  .option("--tick <ms>", "how often certificates and configurations are checked", (v) => Number(v), 60_000)
  .option("--propagation <ms>", "after a CA rotation, how long to wait before serving a certificate from the new CA", (v) => Number(v), 30_000)
  .addOption(new Option("--log-level <level>").choices(["debug", "info", "warn", "error"]).default("info"));

async function main() {
  program.parse();
  const opts = program.opts<{ kubeconfig?: string; namespace: string; port: number; bindAddress: string; healthPort?: number; serviceName: string; certSource: "self" | "cert-manager"; url?: string; manageConfigurations: boolean; tick: number; propagation: number; logLevel: string }>();
  // Asynchronous writes: under load sonic-boom coalesces lines instead of one write(2) per pod;
  // measured by bench/admission.ts, synchronous logging was the webhook's largest CPU cost.
  const log = pino({ level: opts.logLevel, base: { component: "admission" } }, pino.destination({ dest: 1, sync: false }));
  const client = await KubeClient.fromKubeConfig(loadKubeConfig(opts.kubeconfig), { fieldManager: "sandbox-operator-webhook" });
  const webhook = await startWebhook({
    client,
    log,
    namespace: opts.namespace,
    serviceName: opts.serviceName,
    port: opts.port,
    host: opts.bindAddress,
    healthPort: opts.healthPort,
    certSource: opts.certSource,
    url: opts.url,
    manageConfigurations: opts.manageConfigurations,
    tickMs: opts.tick,
    propagationMs: opts.propagation,
  });
  log.info({ port: webhook.port, healthPort: webhook.healthPort, namespace: opts.namespace, certSource: opts.certSource }, "webhook serving");
  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down");
    void webhook.stop().then(() => {
      client.close();
      log.flush(() => process.exit(0));
    });
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((e: Error) => {
  // Startup errors go to stderr synchronously: the logger may not exist yet.
  console.error(`sandbox-operator-webhook: ${e.message}`);
  process.exit(1);
});
