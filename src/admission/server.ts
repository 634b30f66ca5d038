// The webhook process shell: HTTPS server for AdmissionReviews with hot-swapped certificates,
// health endpoints, and the loop that keeps certificates and webhook configurations current.
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { KubeClient, KubeObject } from "../kube/client.js";
import { Admission, type AdmissionReview } from "./admission.js";
import { CertManagerCerts, SelfSignedCerts, type CertSource } from "./certs.js";
import { webhookConfigurations } from "./desiredWebhooks.js";
import { sandboxClasses } from "./policy.js";

export interface WebhookServerOptions {
  client: KubeClient;
  log: Logger;
  /** Operator namespace: exempt from the policy; holds the CA Secret. */
  namespace: string;
  serviceName: string;
  port: number;
  host?: string;
  /** Plain-HTTP port for /healthz and /readyz (kubelet probes); none when undefined. */
  healthPort?: number;
  certSource: "self" | "cert-manager";
  /** Register the webhooks at this URL instead of the Service (tests, out-of-cluster runs). */
  url?: string;
  /** Keep the webhook configurations (caBundle, namespace selectors) current; default true. */
  manageConfigurations?: boolean;
  tickMs?: number;
  propagationMs?: number;
  servingValidDays?: number;
}

export interface RunningWebhook {
  port: number;
  healthPort?: number;
  admission: Admission;
  certs: CertSource;
  /** One pass of the maintenance loop (certificates, configurations), e.g. right after a rotation request. */
  tick(): Promise<void>;
  /** Applies the webhook configurations now. */
  reconcileConfigurations(force?: boolean): Promise<void>;
  stop(): Promise<void>;
}

const MAX_BODY = 8 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error(`request body larger than ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, body: string, type = "application/json") {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

export async function startWebhook(o: WebhookServerOptions): Promise<RunningWebhook> {
  const log = o.log;
  const admission = new Admission(o.client, o.namespace, log);
  const ips = o.url ? [new URL(o.url).hostname].filter((h) => /^[0-9.]+$|:/.test(h)) : [];
  const certs: CertSource =
    o.certSource === "cert-manager"
      ? new CertManagerCerts(o.client, { namespace: o.namespace, serviceName: o.serviceName }, log)
      : new SelfSignedCerts(o.client, { namespace: o.namespace, serviceName: o.serviceName, ips: ["127.0.0.1", ...ips], propagationMs: o.propagationMs, servingValidDays: o.servingValidDays }, log);
  try {
    return await serve(o, admission, certs);
  } catch (e) {
    await admission.stop();
    throw e;
  }
}

async function serve(o: WebhookServerOptions, admission: Admission, certs: CertSource): Promise<RunningWebhook> {
  const log = o.log;
  await certs.tick();
  const ready = () => admission.synced && certs.serving() !== undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0]!;
    if (req.method === "GET" && path === "/healthz") return send(res, 200, "ok", "text/plain");
    if (req.method === "GET" && path === "/readyz") return ready() ? send(res, 200, "ok", "text/plain") : send(res, 503, "caches not synced or no certificate", "text/plain");
    if (req.method !== "POST") return send(res, 405, JSON.stringify({ message: "POST an AdmissionReview" }));
    try {
      const review = JSON.parse(await readBody(req)) as AdmissionReview;
      await admission.waitSynced();
      send(res, 200, JSON.stringify(await admission.review(path, review)));
    } catch (e) {
      // A 500 makes the apiserver apply the webhook's failurePolicy: closed in enforce namespaces, open elsewhere.
      log.error({ path, err: (e as Error).message }, "admission request failed");
      send(res, 500, JSON.stringify({ message: (e as Error).message }));
    }
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => void handle(req, res);

  const pair = certs.serving()!;
  const server: HttpsServer = createHttpsServer({ cert: pair.cert, key: pair.key, minVersion: "TLSv1.2" }, onRequest);
  // The apiserver keeps connections open; a long keep-alive spares a TLS handshake per pod.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as { port: number }).port;

  let health: Server | undefined;
  if (o.healthPort !== undefined) {
    health = createHttpServer(onRequest);
    await new Promise<void>((resolve, reject) => {
      health!.once("error", reject);
      health!.listen(o.healthPort, o.host ?? "0.0.0.0", () => resolve());
    });
  }

  let lastApplied = "";
  const reconcileConfigurations = async (force = false) => {
    if (o.manageConfigurations === false) return;
    const desired = webhookConfigurations({
      namespace: o.namespace,
      serviceName: o.serviceName,
      caBundle: certs.caBundle(),
      url: o.url,
      defaultMode: admission.config()?.podPolicy?.defaultMode,
      exemptNamespaces: admission.config()?.podPolicy?.exemptions?.namespaces,
      sandboxClasses: admission.configs.isSynced && admission.runtimeClasses.isSynced ? sandboxClasses({ config: admission.config(), runtimeClasses: admission.classes() }) : undefined,
      certManagerCertificate: o.certSource === "cert-manager" ? `${o.namespace}/${o.serviceName}` : undefined,
    });
    const text = JSON.stringify(desired);
    if (text === lastApplied && !force) return;
    for (const obj of desired) await o.client.apply(obj as unknown as KubeObject);
    if (text !== lastApplied) log.info({ defaultMode: admission.config()?.podPolicy?.defaultMode ?? "off", bundleBytes: certs.caBundle()?.length ?? 0 }, "webhook configurations applied");
    lastApplied = text;
  };

  const tick = async () => {
    if (await certs.tick()) {
      const p = certs.serving()!;
      server.setSecureContext({ cert: p.cert, key: p.key, minVersion: "TLSv1.2" });
      log.info({}, "serving certificate swapped in; open connections keep the previous one until they close");
    }
    // Re-applied every tick, not only on change: a deleted or edited configuration comes back.
    await reconcileConfigurations(true);
  };
  await reconcileConfigurations(true);

  let running = false;
  const loop = async () => {
    if (running) return;
    running = true;
    try {
      await tick();
    } catch (e) {
      log.warn({ err: (e as Error).message }, "webhook maintenance failed; retrying on the next tick");
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void loop(), o.tickMs ?? 60_000);
  // Namespace selectors follow SandboxConfig spec.podPolicy.defaultMode without waiting for a full tick.
  // Cheap check first: rebuild the configurations only when an input changed.
  let lastInputs = "";
  const fast = setInterval(() => {
    const inputs = `${admission.configs.version}/${admission.runtimeClasses.version}/${certs.caBundle()?.length ?? 0}/${certs.caBundle()?.slice(-64) ?? ""}`;
    if (inputs === lastInputs) return;
    lastInputs = inputs;
    void reconcileConfigurations().catch((e) => {
      lastInputs = "";
      log.warn({ err: (e as Error).message }, "applying webhook configurations failed");
    });
  }, 1000);

  return {
    port,
    healthPort: health ? (health.address() as { port: number }).port : undefined,
    admission,
    certs,
    tick,
    reconcileConfigurations,
    async stop() {
      clearInterval(timer);
      clearInterval(fast);
      await admission.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      if (health) await new Promise<void>((resolve) => health!.close(() => resolve()));
    },
  };
}
