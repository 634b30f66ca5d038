/* eslint-disable @typescript-eslint/no-explicit-any -- walks generated YAML/JSON documents */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SandboxConfigSpec } from "../api/index.js";
import { crds } from "../manifests/crds.js";
import { MIN_KUBE_VERSION, bundleAnnotations, plainManifest, renderBundle, renderCsv, type BundleInputs, type CrdLike } from "./render-bundle.js";
import * as inputs from "./render-bundle.sample.js";

const bundleInputs = (): BundleInputs => ({
  version: "1.2.3",
  image: "quay.io/x/op:v1.2.3",
  deployments: [{ name: "op", spec: inputs.placeholderDeploymentSpec }],
  clusterPermissions: [
    { serviceAccountName: inputs.SERVICE_ACCOUNT, rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["get"] }] },
    { serviceAccountName: "node-agent", rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["list"] }] },
  ],
  permissions: [{ serviceAccountName: inputs.SERVICE_ACCOUNT, rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get"] }] }],
  crds: crds() as unknown as CrdLike[],
  manifests: [{ apiVersion: "v1", kind: "Service", metadata: { name: "op-webhook", namespace: "ns" }, spec: { ports: [{ port: 443 }] } }],
  suggestedNamespace: "op-system",
});

describe("renderCsv", () => {
  const csv = renderCsv(bundleInputs()) as any;
  it("embeds the Deployments and every service account's RBAC rules it is given, also one no Deployment runs as", () => {
    const install = csv.spec.install;
    assert.equal(install.strategy, "deployment");
    assert.equal(install.spec.deployments[0].name, "op");
    assert.deepEqual(install.spec.deployments[0].spec, inputs.placeholderDeploymentSpec);
    assert.deepEqual(install.spec.clusterPermissions, bundleInputs().clusterPermissions);
    assert.deepEqual(install.spec.permissions, bundleInputs().permissions);
    assert.equal(csv.metadata.annotations["operatorframework.io/suggested-namespace"], "op-system");
    assert.equal(csv.metadata.name, "sandbox-operator.v1.2.3");
    assert.equal(csv.spec.version, "1.2.3");
    assert.equal(csv.metadata.annotations.containerImage, "quay.io/x/op:v1.2.3");
  });
  it("owns both CRDs with a descriptor (and a description) for every top-level spec field", () => {
    const owned = csv.spec.customresourcedefinitions.owned;
    assert.deepEqual(owned.map((o: any) => o.name), ["sandboxconfigs.sandboxing.dev", "sandboxnodes.sandboxing.dev"]);
    const paths = owned[0].specDescriptors.map((d: any) => d.path);
    assert.deepEqual(paths, Object.keys(SandboxConfigSpec.properties));
    for (const d of [...owned[0].specDescriptors, ...owned[1].specDescriptors]) assert.ok(d.description.length > 10, `descriptor ${d.path} has a description`);
    assert.ok(owned[0].statusDescriptors.some((d: any) => d.path === "conditions" && d["x-descriptors"][0] === "urn:alm:descriptor:io.kubernetes.conditions"));
  });
  it("supports only AllNamespaces (cluster-scoped API), states minKubeVersion and an SVG icon", () => {
    assert.deepEqual(csv.spec.installModes.filter((m: any) => m.supported).map((m: any) => m.type), ["AllNamespaces"]);
    assert.equal(csv.spec.minKubeVersion, MIN_KUBE_VERSION);
    assert.match(Buffer.from(csv.spec.icon[0].base64data, "base64").toString(), /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  });
  it("has a parseable alm-examples with the SandboxConfig named cluster", () => {
    const ex = JSON.parse(csv.metadata.annotations["alm-examples"]);
    assert.equal(ex[0].kind, "SandboxConfig");
    assert.equal(ex[0].metadata.name, "cluster");
  });
  it("refuses a Deployment whose service account has no permissions entry (OLM would not create the account)", () => {
    assert.throws(() => renderCsv({ ...bundleInputs(), permissions: [], clusterPermissions: [] }), /Deployment op runs as service account sandbox-operator-controller, which has no permissions entry/);
  });
  it("refuses a CRD it has no CSV description for", () => {
    const other = { metadata: { name: "others.example.com" }, spec: { group: "example.com", names: { kind: "Other", plural: "others" }, versions: [{ name: "v1" }] } };
    assert.throws(() => renderCsv({ ...bundleInputs(), crds: [other] }), /no CSV description for CRD others\.example\.com/);
  });
});

describe("renderBundle", () => {
  it("lays out manifests/ and metadata/ with the package and channel", () => {
    assert.deepEqual(renderBundle(bundleInputs()).map(([p]) => p), [
      "manifests/sandbox-operator.clusterserviceversion.yaml",
      "manifests/sandboxing.dev_sandboxconfigs.yaml",
      "manifests/sandboxing.dev_sandboxnodes.yaml",
      "manifests/op-webhook_v1_service.yaml",
      "metadata/annotations.yaml",
    ]);
    assert.equal((bundleAnnotations() as any).annotations["operators.operatorframework.io.bundle.package.v1"], "sandbox-operator");
  });
});

describe("plainManifest", () => {
  it("drops the namespace (OLM uses the install namespace) and names the file name_group_version_kind", () => {
    const [path, obj] = plainManifest({ apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: "op", namespace: "x", labels: { a: "b" } }, spec: {} });
    assert.equal(path, "manifests/op_policy_v1_poddisruptionbudget.yaml");
    assert.deepEqual((obj as any).metadata, { name: "op", labels: { a: "b" } });
  });
  for (const kind of ["DaemonSet", "SecurityContextConstraints", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy"]) {
    it(`refuses a ${kind}, which OLM does not create from a bundle`, () => {
      assert.throws(() => plainManifest({ apiVersion: "x/v1", kind, metadata: { name: "a" } }), new RegExp(`${kind} a cannot be a bundle manifest`));
    });
  }
});
