// docs/install-kubernetes.md as a reader runs it, with the real kubectl (a YAML 1.1 reader) on a
// fresh kube-apiserver: one `kubectl apply --server-side -f deploy/sandbox-operator.yaml` installs
// every object (no kubelet here, so the pods do not run; the apply is what is proved), the CRDs
// become Established, and `kubectl apply -f examples/sandboxconfig.yaml` stores the sample as written.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/kube/client.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { startControlPlane, type ControlPlane } from "../harness/controlplane.js";
import { kubectl, kubectlOk } from "../harness/kubectl.js";

const INSTALL = "deploy/sandbox-operator.yaml";
const SAMPLE = "examples/sandboxconfig.yaml";
const CRDS = ["sandboxconfigs.sandboxing.dev", "sandboxnodes.sandboxing.dev"];

interface SchemaProps {
  type?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, SchemaProps>;
}
type Crd = KubeObject & { spec: { versions: Array<{ schema: { openAPIV3Schema: SchemaProps } }> } };
type Config = KubeObject & { spec: Record<string, unknown> & { podPolicy?: { defaultMode?: unknown } } };

/** What the file holds, as `kind/name` the way `kubectl get -o name` prints it (lower-case kind, group). */
function namesIn(file: string): string[] {
  return parseAllDocuments(readFileSync(join(repoRoot(), file), "utf8")).map((d) => {
    const o = d.toJS() as Required<Pick<KubeObject, "apiVersion" | "kind" | "metadata">>;
    const group = o.apiVersion.includes("/") ? `.${o.apiVersion.split("/")[0]}` : "";
    return `${o.kind.toLowerCase()}${group}/${o.metadata.name}`;
  });
}

/** `stored` cut down to the keys `written` has, at every depth (arrays and scalars whole). */
function shapedLike(stored: unknown, written: unknown): unknown {
  if (written === null || typeof written !== "object" || Array.isArray(written) || stored === null || typeof stored !== "object") return stored;
  return Object.fromEntries(Object.keys(written).map((k) => [k, shapedLike((stored as Record<string, unknown>)[k], (written as Record<string, unknown>)[k])]));
}

describe("kubectl installs deploy/sandbox-operator.yaml and the sample SandboxConfig on a fresh apiserver", () => {
  // Its own control plane, never a shared one: the one command must work on an empty cluster.
  let cp: ControlPlane;
  let kc: string;
  const run = (args: string[]) => kubectlOk(kc, args);

  before(async () => {
    cp = await startControlPlane();
    kc = cp.kubeconfigPath;
  });
  after(async () => {
    await cp?.stop();
  });

  it("is the harness-built kubectl v1.34.4, not the machine's own", async () => {
    const v = JSON.parse(await run(["version", "--client", "-o", "json"])) as { clientVersion: { gitVersion: string } };
    assert.equal(v.clientVersion.gitVersion, "v1.34.4");
  });

  it(`kubectl apply --server-side -f ${INSTALL} creates every object in one go`, async () => {
    const r = await kubectl(kc, ["apply", "--server-side", "-f", INSTALL]);
    assert.equal(r.code, 0, `kubectl apply --server-side -f ${INSTALL} failed:\n${r.stderr}`);
    assert.equal(r.stderr.trim(), "", "no warnings");
    const stored = (await run(["get", "-f", INSTALL, "-o", "name"])).trim().split("\n");
    assert.deepEqual(stored, namesIn(INSTALL));
  });

  it("the CRDs become Established and kubectl get crd lists them", async () => {
    await run(["wait", "--for=condition=Established", "--timeout=60s", ...CRDS.map((c) => `crd/${c}`)]);
    const listed = (await run(["get", "crd", "-o", "custom-columns=NAME:.metadata.name", "--no-headers"])).trim().split("\n");
    assert.deepEqual(listed.filter((n) => n.endsWith(".sandboxing.dev")).sort(), CRDS);
  });

  it("the stored CRD keeps podPolicy.defaultMode a string: default \"off\", enum enforce|audit|off", async () => {
    const crd = JSON.parse(await run(["get", "crd", CRDS[0]!, "-o", "json"])) as Crd;
    const mode = crd.spec.versions[0]!.schema.openAPIV3Schema.properties?.spec?.properties?.podPolicy?.properties?.defaultMode ?? {};
    assert.deepEqual({ type: mode.type, default: mode.default, enum: mode.enum }, { type: "string", default: "off", enum: ["enforce", "audit", "off"] });
  });

  it("applying it again succeeds and changes nothing", async () => {
    const before = JSON.parse(await run(["get", "-f", INSTALL, "-o", "json"])) as { items: KubeObject[] };
    await run(["apply", "--server-side", "-f", INSTALL]);
    const again = JSON.parse(await run(["get", "-f", INSTALL, "-o", "json"])) as { items: KubeObject[] };
    assert.deepEqual(again.items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`), before.items.map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`));
  });

  it(`kubectl apply -f ${SAMPLE} stores the sample with defaultMode "off" (a string)`, async () => {
    const r = await kubectl(kc, ["apply", "-f", SAMPLE]);
    assert.equal(r.code, 0, `kubectl apply -f ${SAMPLE} failed:\n${r.stderr}`);
    assert.match(r.stdout, /^sandboxconfig\.sandboxing\.dev\/cluster created$/m);
    const stored = JSON.parse(await run(["get", "sandboxconfig", "cluster", "-o", "json"])) as Config;
    const [written] = parseAllDocuments(readFileSync(join(repoRoot(), SAMPLE), "utf8")).map((d) => d.toJS() as Config);
    assert.equal(stored.spec.podPolicy?.defaultMode, "off");
    // Defaults the CRD adds beside the file's fields (at any depth) are fine; the file's own must be kept.
    assert.deepEqual(shapedLike(stored.spec, written!.spec), written!.spec, "every field of the file is stored as written");
  });
});
