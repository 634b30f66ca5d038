// Certificates without downtime: serving-cert and CA rotation while pods are being created through
// the real apiserver (no request may fail), a second replica adopting the stored CA, cert-manager mode.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:tls";
import { X509Certificate } from "node:crypto";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { SelfSignedCerts } from "../../src/admission/certs.js";
import { createCA, issue } from "../../src/kube/pki.js";
import { certManagerSecretName, DEFAULT_SERVICE_NAME, WEBHOOK_CONFIG_NAME } from "../../src/admission/desiredWebhooks.js";
import type { RunningWebhook } from "../../src/admission/server.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually } from "../harness/cluster.js";
import { NS, OPERATOR_NS, createPod, pod, setupCluster, startTestWebhook, testLog, waitWebhookActive, stopWebhookEnv } from "./admission-fixture.js";

type Secret = KubeObject & { data: Record<string, string> };
type WebhookConfig = KubeObject & { webhooks: Array<{ name: string; clientConfig: { caBundle?: string } }> };

/** The serial of the certificate the webhook presents on a new TLS connection. */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? "";
      s.end();
      resolve(serial);
    });
    s.on("error", reject);
  });
}

/** Creates dry-run pods in the enforce namespace back to back (4 in flight) until stopped; counts failures. */
function load(client: KubeClient) {
  let stop = false;
  const stats = { ok: 0, failed: [] as string[] };
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const r = await createPod(client, pod(`load-${w}-${i}`, NS.enforce), true).catch((e: Error) => ({ status: 0, message: e.message, obj: undefined }));
      if (r.status === 201 && r.obj?.spec.runtimeClassName === "sandboxed") stats.ok++;
      else stats.failed.push(`${r.status}: ${r.message}`);
    }
  };
  const done = Promise.all([0, 1, 2, 3].map(worker));
  return { stats, stop: async () => ((stop = true), await done) };
}

describe("webhook certificates", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  let webhookClient: KubeClient;
  let webhook: RunningWebhook & { url: string };

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    webhookClient = await KubeClient.fromKubeConfig(cp.kubeConfig(), { fieldManager: "sandbox-operator-webhook" });
    await setupCluster(client);
    webhook = await startTestWebhook(webhookClient, { tickMs: 200, propagationMs: 2000 });
    await waitWebhookActive(client);
  });
  after(() => stopWebhookEnv({ webhook, webhookClient, client, cp }));

  it("keeps the CA in a Secret and its PEM in both webhook configurations", async () => {
    const secret = await client.get<Secret>("Secret", `${DEFAULT_SERVICE_NAME}-ca`, OPERATOR_NS);
    const caPem = Buffer.from(secret.data["ca.crt"]!, "base64").toString();
    for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      const cfg = await client.get<WebhookConfig>(kind, WEBHOOK_CONFIG_NAME);
      for (const w of cfg.webhooks) assert.equal(Buffer.from(w.clientConfig.caBundle!, "base64").toString().trim(), caPem.trim(), `${kind} ${w.name}`);
    }
    const served = new X509Certificate(Buffer.from((webhook.certs.serving()!.cert.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----").trim()));
    assert.ok(served.verify(new X509Certificate(caPem).publicKey), "serving certificate is signed by the stored CA");
  });

  it("rotates the serving certificate and then the CA while pods are created: no request fails", async () => {
    const before = await servedSerial(webhook.port);
    const l = load(client);
    await new Promise((r) => setTimeout(r, 1500));
    (webhook.certs as SelfSignedCerts).rotateServing();
    const afterServing = await eventually("new serving cert", async () => {
      const s = await servedSerial(webhook.port);
      return s !== before && s;
    });
    await new Promise((r) => setTimeout(r, 1500));

    const oldCa = (await client.get<Secret>("Secret", `${DEFAULT_SERVICE_NAME}-ca`, OPERATOR_NS)).data["ca.crt"];
    await (webhook.certs as SelfSignedCerts).rotateCA();
    // Both CAs are trusted first; only after the propagation delay does the webhook serve from the new one.
    const secret = await eventually("rotated CA secret", async () => {
      const s = await client.get<Secret>("Secret", `${DEFAULT_SERVICE_NAME}-ca`, OPERATOR_NS);
      return s.data["ca.crt"] !== oldCa && s;
    });
    assert.equal(secret.data["previous-ca.crt"], oldCa);
    await eventually("bundle with both CAs", async () => {
      const cfg = await client.get<WebhookConfig>("MutatingWebhookConfiguration", WEBHOOK_CONFIG_NAME);
      return (Buffer.from(cfg.webhooks[0]!.clientConfig.caBundle!, "base64").toString().match(/BEGIN CERTIFICATE/g) ?? []).length === 2;
    });
    const newCa = new X509Certificate(Buffer.from(secret.data["ca.crt"]!, "base64"));
    await eventually("serving cert from the new CA", async () => {
      const s = await servedSerial(webhook.port);
      return s !== afterServing && s;
    }, 20_000);
    await new Promise((r) => setTimeout(r, 2000));
    await l.stop();
    assert.deepEqual(l.stats.failed, [], `failed requests: ${l.stats.failed.slice(0, 3).join(" | ")}`);
    assert.ok(l.stats.ok >= 20, `only ${l.stats.ok} pods created during the rotations`);
    const current = webhook.certs.serving()!.cert;
    const leaf = new X509Certificate(current.slice(0, current.indexOf("-----END CERTIFICATE-----") + 25));
    assert.ok(leaf.verify(newCa.publicKey), "serving certificate now signed by the new CA");
  });

  it("a second replica adopts the stored CA instead of minting its own", async () => {
    const stored = (await client.get<Secret>("Secret", `${DEFAULT_SERVICE_NAME}-ca`, OPERATOR_NS)).data["ca.crt"];
    const replica = new SelfSignedCerts(webhookClient, { namespace: OPERATOR_NS, serviceName: DEFAULT_SERVICE_NAME }, testLog());
    await replica.tick();
    assert.equal(Buffer.from(replica.caBundle()!.split("-----END CERTIFICATE-----")[0]! + "-----END CERTIFICATE-----\n").toString("base64"), Buffer.from(Buffer.from(stored!, "base64").toString().trim() + "\n").toString("base64"));
    assert.equal((await client.get<Secret>("Secret", `${DEFAULT_SERVICE_NAME}-ca`, OPERATOR_NS)).data["ca.crt"], stored, "Secret unchanged");
  });

  it("cert-manager mode serves the Certificate's Secret and reloads it when cert-manager renews it", async () => {
    await webhook.stop();
    const ca = await createCA("cert-manager-test-ca");
    const leafFor = async () => issue(ca, { commonName: "webhook", ips: ["127.0.0.1"], server: true });
    const writeSecret = async (pair: { certPem: string; keyPem: string }) =>
      client.apply({ apiVersion: "v1", kind: "Secret", metadata: { name: certManagerSecretName(DEFAULT_SERVICE_NAME), namespace: OPERATOR_NS }, type: "kubernetes.io/tls", data: { "tls.crt": Buffer.from(pair.certPem).toString("base64"), "tls.key": Buffer.from(pair.keyPem).toString("base64"), "ca.crt": Buffer.from(ca.certPem).toString("base64") } } as never);
    const first = await leafFor();
    await writeSecret(first);
    webhook = await startTestWebhook(webhookClient, { tickMs: 200, certSource: "cert-manager" });
    const mutating = await client.get<WebhookConfig & { metadata: { annotations?: Record<string, string> } }>("MutatingWebhookConfiguration", WEBHOOK_CONFIG_NAME);
    assert.equal(mutating.metadata.annotations?.["cert-manager.io/inject-ca-from"], `${OPERATOR_NS}/${DEFAULT_SERVICE_NAME}`);
    // Play cert-manager's CA injector: put its CA into every webhook entry.
    for (const kind of ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]) {
      const cfg = await client.get<WebhookConfig>(kind, WEBHOOK_CONFIG_NAME);
      const ops = cfg.webhooks.map((_, i) => ({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: Buffer.from(ca.certPem).toString("base64") }));
      await client.jsonPatch(kind, WEBHOOK_CONFIG_NAME, ops);
    }
    await waitWebhookActive(client);
    assert.equal(await servedSerial(webhook.port), new X509Certificate(first.certPem).serialNumber);
    const renewed = await leafFor();
    await writeSecret(renewed);
    await eventually("renewed certificate served", async () => (await servedSerial(webhook.port)) === new X509Certificate(renewed.certPem).serialNumber);
    const r = await createPod(client, pod("cm-after-renewal", NS.enforce), true);
    assert.equal(r.obj?.spec.runtimeClassName, "sandboxed", r.message);
  });
});
