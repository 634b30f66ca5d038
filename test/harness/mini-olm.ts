// A test-side stand-in for OLM installing a registry+v1 bundle, after OLM's documented behaviour:
// CRDs, the CSV (checked by OLM's own CRD schema), service accounts and RBAC, plain manifests, Deployments.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import type { AnyObject, KubeClient, KubeObject } from "../../src/kube/client.js";
import { goEnv } from "./binaries.js";
import { installCrds } from "./cluster.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const OLM_API = "github.com/operator-framework/api";

/**
 * One of OLM's CRDs (clusterserviceversions, operatorgroups, subscriptions...) as operator-framework/api
 * ships it: the module operator-verify is built from, pinned in test/harness/openshift-bins/go.mod.
 */
export function olmCrd(plural: string): AnyObject {
  const r = spawnSync("go", ["mod", "download", "-json", OLM_API], { cwd: join(HERE, "openshift-bins"), env: goEnv(), encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`go mod download ${OLM_API} failed (exit ${r.status}): ${r.stderr}${r.error?.message ?? ""}`);
  const dir = (JSON.parse(r.stdout) as { Dir?: string }).Dir;
  if (!dir) throw new Error(`go mod download ${OLM_API} printed no Dir: ${r.stdout}`);
  return parseAllDocuments(readFileSync(join(dir, "crds", `operators.coreos.com_${plural}.yaml`), "utf8"))[0]!.toJS() as AnyObject;
}

interface Permission {
  serviceAccountName: string;
  rules: unknown[];
}
interface Csv extends KubeObject {
  spec: {
    install: { strategy: string; spec: { deployments: Array<{ name: string; label?: Record<string, string>; spec: AnyObject }>; permissions?: Permission[]; clusterPermissions?: Permission[] } };
    webhookdefinitions?: unknown[];
    apiservicedefinitions?: { owned?: unknown[] };
  };
}

export interface InstalledBundle {
  csv: Csv;
  /** Every object created, in order (CRDs excluded). */
  created: KubeObject[];
}

function bundleObjects(bundleDir: string): AnyObject[] {
  const dir = join(bundleDir, "manifests");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJS() as AnyObject))
    .filter(Boolean);
}

/**
 * What OLM does for an AllNamespaces install into `namespace` (its catalog, resolver, InstallPlan and
 * OperatorGroup are not played): CRDs; the CSV; per permissions entry a ServiceAccount (created when
 * missing), a Role and RoleBinding; per clusterPermissions entry a ClusterRole and binding; plain
 * manifests in the namespace; the install strategy's Deployments with OLM's pod template annotation
 * olm.targetNamespaces ("" = all). Webhook and APIService definitions are refused: this stand-in
 * does not implement them, so a bundle that starts using them fails here instead of passing untested.
 */
export async function installBundle(client: KubeClient, bundleDir: string, namespace: string): Promise<InstalledBundle> {
  const objects = bundleObjects(bundleDir);
  const csv = objects.find((o) => o.kind === "ClusterServiceVersion") as unknown as Csv | undefined;
  if (!csv) throw new Error(`${bundleDir}/manifests has no ClusterServiceVersion`);
  if (csv.spec.install.strategy !== "deployment") throw new Error(`install strategy ${csv.spec.install.strategy}: OLM knows only "deployment"`);
  if (csv.spec.webhookdefinitions?.length || csv.spec.apiservicedefinitions?.owned?.length) throw new Error("the CSV has webhookdefinitions/apiservicedefinitions, which this mini OLM does not implement: extend test/harness/mini-olm.ts");
  await installCrds(client, objects.filter((o) => o.kind === "CustomResourceDefinition") as unknown as KubeObject[]);
  const created: KubeObject[] = [];
  const create = async (o: AnyObject) => created.push(await client.apply<KubeObject>(o, { force: true }));
  const csvName = csv.metadata.name;
  const owner = { "olm.owner": csvName, "olm.owner.kind": "ClusterServiceVersion", "olm.owner.namespace": namespace };
  // Not in src/kube's kind table (the operator never touches a CSV): posted by path.
  const csvRef = { group: "operators.coreos.com", version: "v1alpha1", plural: "clusterserviceversions", namespaced: true };
  created.push(await client.call<KubeObject>("POST", client.path(csvRef, undefined, namespace, undefined, { fieldValidation: "Strict" }), { ...csv, metadata: { ...csv.metadata, namespace } }));
  const accounts = new Set<string>();
  const account = async (sa: string) => {
    if (accounts.has(sa)) return;
    accounts.add(sa);
    await create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace, labels: owner } });
  };
  const rbac = "rbac.authorization.k8s.io/v1";
  for (const [i, p] of (csv.spec.install.spec.permissions ?? []).entries()) {
    await account(p.serviceAccountName);
    const name = `${csvName}-${p.serviceAccountName}-${i}`;
    await create({ apiVersion: rbac, kind: "Role", metadata: { name, namespace, labels: owner }, rules: p.rules });
    await create({ apiVersion: rbac, kind: "RoleBinding", metadata: { name, namespace, labels: owner }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name }, subjects: [{ kind: "ServiceAccount", name: p.serviceAccountName, namespace }] });
  }
  for (const [i, p] of (csv.spec.install.spec.clusterPermissions ?? []).entries()) {
    await account(p.serviceAccountName);
    const name = `${csvName}-${p.serviceAccountName}-${i}`;
    await create({ apiVersion: rbac, kind: "ClusterRole", metadata: { name, labels: owner }, rules: p.rules });
    await create({ apiVersion: rbac, kind: "ClusterRoleBinding", metadata: { name, labels: owner }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name }, subjects: [{ kind: "ServiceAccount", name: p.serviceAccountName, namespace }] });
  }
  for (const o of objects.filter((x) => x.kind !== "ClusterServiceVersion" && x.kind !== "CustomResourceDefinition")) {
    await create({ ...o, metadata: { ...(o.metadata as object), namespace } } as AnyObject);
  }
  for (const d of csv.spec.install.spec.deployments) {
    const spec = structuredClone(d.spec) as unknown as { template: { metadata: { annotations?: Record<string, string> } } };
    spec.template.metadata.annotations = { ...spec.template.metadata.annotations, "olm.targetNamespaces": "", "olm.operatorNamespace": namespace };
    await create({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: d.name, namespace, labels: { ...d.label, ...owner } }, spec } as unknown as AnyObject);
  }
  return { csv, created };
}
