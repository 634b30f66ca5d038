// Rotated service-account tokens against the real apiserver: a long-lived KubeClient (as every
// component builds it) keeps working when its token file is replaced and the old token revoked.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.js";
import { bindingSecret, requestToken, tokenFileKubeconfig, writeTokenFile } from "../harness/sa-tokens.js";
import { KubeClient, type KubeObject } from "../../src/kube/client.js";
import { loadKubeConfig } from "../../src/kube/kubeconfig.js";
import { Informer } from "../../src/kube/informer.js";

const NS = "rotation";
const SA = "rotator";

/** A request with exactly this bearer token (no retry, no file): proves a token is valid or revoked. */
async function statusWith(cp: ControlPlane, token: string): Promise<number> {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: cp.url, caData: Buffer.from(cp.ca.certPem).toString("base64"), skipTLSVerify: false }],
    users: [{ name: "u", token }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const c = await KubeClient.fromKubeConfig(kc);
  try {
    return (await c.raw("GET", `/api/v1/namespaces/${NS}`)).status;
  } finally {
    c.close();
  }
}

describe("service-account token rotation (real apiserver, TokenRequest tokens bound to Secrets)", () => {
  let cp: ControlPlane;
  let admin: KubeClient;

  before(async () => {
    cp = await startControlPlane();
    admin = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await admin.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: NS } } as KubeObject);
    await admin.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: SA, namespace: NS } } as KubeObject);
    await admin.create({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: SA }, rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] }] } as KubeObject);
    await admin.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: SA },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: SA },
      subjects: [{ kind: "ServiceAccount", name: SA, namespace: NS }],
    } as KubeObject);
  });
  after(async () => {
    admin?.close();
    await cp?.stop();
  });

  /** Token 1 in the file, a client, then token 2 in the file and token 1 revoked: the same client goes on. */
  async function rotate(label: string, client: KubeClient, tokenFile: string, first: string, firstSecret = `${label}-1`) {
    assert.equal((await client.get("Namespace", NS)).metadata.name, NS, `${label}: first token works`);
    const s2 = await bindingSecret(admin, NS, `${label}-2`);
    writeTokenFile(tokenFile, (await requestToken(admin, NS, SA, s2)) + "\n");
    assert.ok(await admin.delete("Secret", firstSecret, NS), `${label}: Secret ${firstSecret} existed`);
    // The apiserver refuses the old token once its authentication cache (10 s) lets go of it.
    for (let i = 0; (await statusWith(cp, first)) !== 401; i++) {
      assert.ok(i < 200, `${label}: the old token was never revoked`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (let i = 0; i < 3; i++) assert.equal((await client.get("Namespace", NS)).metadata.name, NS, `${label}: request ${i} after rotation`);
  }

  it("in-cluster service account (loadFromCluster): the next requests after rotation succeed", async () => {
    const root = join(cp.dir, "pod-root");
    const saDir = join(root, "var/run/secrets/kubernetes.io/serviceaccount");
    mkdirSync(saDir, { recursive: true });
    writeFileSync(join(saDir, "ca.crt"), cp.ca.certPem);
    writeFileSync(join(saDir, "namespace"), NS);
    const s1 = await bindingSecret(admin, NS, "incluster-1");
    const first = await requestToken(admin, NS, SA, s1);
    writeTokenFile(join(saDir, "token"), first);
    const url = new URL(cp.url);
    process.env.KUBERNETES_SERVICE_HOST = url.hostname;
    process.env.KUBERNETES_SERVICE_PORT = url.port;
    const kc = new KubeConfig();
    kc.loadFromCluster(root); // what loadFromDefault() does in a Pod, with the token under a prefix
    const client = await KubeClient.fromKubeConfig(kc);
    try {
      await rotate("incluster", client, join(saDir, "token"), first);
    } finally {
      client.close();
    }
  });

  it("a kubeconfig with tokenFile (sandboxctl, --kubeconfig): a long-lived watch, then requests, go on after rotation", async () => {
    const tokenFile = join(cp.dir, "kubeconfig-token");
    const s1 = await bindingSecret(admin, NS, "file-1");
    const first = await requestToken(admin, NS, SA, s1);
    writeTokenFile(tokenFile, first);
    const client = await KubeClient.fromKubeConfig(loadKubeConfig(tokenFileKubeconfig(cp, cp.dir, "file", tokenFile)), { fieldManager: "rotation-test" });
    // Short server-side watch timeouts: the watch is reopened (and authenticated again) every 2 s.
    const informer = new Informer<KubeObject>(client, "Namespace", { watchTimeoutSeconds: 2, baseBackoffMs: 100 });
    try {
      informer.start();
      await informer.waitForSync();
      // Only the informer talks to the apiserver while the token rotates: its reopened watch meets the revoked token.
      const s2 = await bindingSecret(admin, NS, "file-2");
      writeTokenFile(tokenFile, await requestToken(admin, NS, SA, s2));
      await admin.delete("Secret", "file-1", NS);
      for (let i = 0; (await statusWith(cp, first)) !== 401; i++) {
        assert.ok(i < 200, "the old token was never revoked");
        await new Promise((r) => setTimeout(r, 100));
      }
      const restartsBefore = informer.restarts;
      await new Promise((r) => setTimeout(r, 4_500)); // at least one watch reopened after the revocation
      await admin.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: "after-rotation" } } as KubeObject);
      const deadline = Date.now() + 15_000;
      while (!informer.get("after-rotation")) {
        assert.ok(Date.now() < deadline, "the informer never saw a namespace created after the rotation");
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(informer.restarts, restartsBefore, "no list/watch failed after the rotation");
      await rotate("file3", client, tokenFile, readFileSync(tokenFile, "utf8"), "file-2");
    } finally {
      await informer.stop();
      client.close();
    }
  });

  it("without a rotation the revoked token is refused: the test can fail", async () => {
    const tokenFile = join(cp.dir, "stale-token");
    const s1 = await bindingSecret(admin, NS, "stale-1");
    writeTokenFile(tokenFile, await requestToken(admin, NS, SA, s1));
    const client = await KubeClient.fromKubeConfig(loadKubeConfig(tokenFileKubeconfig(cp, cp.dir, "stale", tokenFile)));
    try {
      await client.get("Namespace", NS);
      await admin.delete("Secret", "stale-1", NS);
      let status = 0;
      for (let i = 0; i < 200 && status !== 401; i++) {
        status = (await client.raw("GET", `/api/v1/namespaces/${NS}`)).status;
        if (status !== 401) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 401, "a revoked token that was not replaced is refused");
    } finally {
      client.close();
    }
  });
});
