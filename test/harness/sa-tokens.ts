// Service-account tokens from the real apiserver's TokenRequest API, bound to an object (a Secret
// or a Pod) so deleting it revokes them, and kubeconfigs that read such a token from a file.
import { writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { KubeClient, KubeObject } from "../../src/kube/client.js";
import type { ControlPlane } from "./controlplane.js";

export interface BoundObject {
  kind: "Secret" | "Pod";
  name: string;
  uid: string;
}

/** A token for namespace/serviceAccount, valid until `bound` is deleted (or expirationSeconds pass). */
export async function requestToken(admin: KubeClient, namespace: string, serviceAccount: string, bound?: BoundObject, expirationSeconds = 3600): Promise<string> {
  const path = `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`;
  const body = {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds, ...(bound ? { boundObjectRef: { apiVersion: "v1", ...bound } } : {}) },
  };
  const res = await admin.call<{ status: { token: string } }>("POST", path, body);
  return res.status.token;
}

/** Creates an Opaque Secret to bind tokens to; deleting it revokes every token bound to it. */
export async function bindingSecret(admin: KubeClient, namespace: string, name: string): Promise<BoundObject> {
  const s = await admin.create<KubeObject>({ apiVersion: "v1", kind: "Secret", metadata: { name, namespace }, type: "Opaque" } as KubeObject);
  return { kind: "Secret", name, uid: s.metadata.uid! };
}

/** Writes `token` to `file` the way the kubelet swaps a projected token: a new file renamed over the old. */
export function writeTokenFile(file: string, token: string): void {
  writeFileSync(`${file}.tmp`, token, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** A kubeconfig file for the control plane whose user reads its bearer token from `tokenFile`. */
export function tokenFileKubeconfig(cp: ControlPlane, dir: string, name: string, tokenFile: string): string {
  const path = join(dir, `${name}.kubeconfig`);
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "test", cluster: { server: cp.url, "certificate-authority-data": Buffer.from(cp.ca.certPem).toString("base64") } }],
    users: [{ name, user: { tokenFile } }],
    contexts: [{ name: "test", context: { cluster: "test", user: name } }],
    "current-context": "test",
  };
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
  return path;
}
