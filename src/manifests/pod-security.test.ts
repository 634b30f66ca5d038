// The committed deploy/ and bundle/ files as OpenShift's SCC admission would meet them: no pod fixes
// a UID or GID (restricted-v2 assigns them) but the privileged root agent, and the CSV carries every
// component's RBAC as deploy/ grants it, plus the agent's use of the privileged SCC.
/* eslint-disable @typescript-eslint/no-explicit-any -- walks generated YAML documents */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { IMAGE_USER } from "../images/build.js";
import { repoRoot } from "./image-lock.js";
import { AGENT, AGENT_SCC, CONTROLLER, NAMESPACE, REQUIRED_SCC_ANNOTATION, RESTRICTED_SCC, WEBHOOK } from "./names.js";

const root = repoRoot();
const yamlFiles = (dir: string): string[] =>
  readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith(".yaml") ? [join(dir, e.name)] : []));
const docs = (file: string): any[] => parseAllDocuments(readFileSync(join(root, file), "utf8")).map((d) => d.toJS()).filter(Boolean);

interface PodTemplate {
  where: string;
  template: any;
}

/** Every pod template: workloads' spec.template, and the Deployments inside a CSV's install strategy. */
function podTemplates(): PodTemplate[] {
  const out: PodTemplate[] = [];
  for (const file of [...yamlFiles("deploy"), ...yamlFiles("bundle")]) {
    for (const o of docs(file)) {
      const where = `${relative(root, join(root, file))}: ${o.kind} ${o.metadata?.name}`;
      if (o.kind === "Pod") out.push({ where, template: { metadata: o.metadata, spec: o.spec } });
      if (o.spec?.template?.spec) out.push({ where, template: o.spec.template });
      if (o.spec?.jobTemplate?.spec?.template) out.push({ where, template: o.spec.jobTemplate.spec.template });
      for (const d of o.kind === "ClusterServiceVersion" ? o.spec.install.spec.deployments : []) out.push({ where: `${where} deployment ${d.name}`, template: d.spec.template });
    }
  }
  return out;
}

const FIXED_IDS = ["runAsUser", "runAsGroup", "fsGroup"] as const;
const containers = (spec: any): any[] => [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
const isAgent = (t: PodTemplate) => t.template.spec.serviceAccountName === AGENT;

describe("pod security as OpenShift admits it (deploy/ and bundle/)", () => {
  const templates = podTemplates();

  it("finds the controller, webhook and agent pod templates in deploy/ and the controller and webhook in the CSV", () => {
    const names = templates.map((t) => `${t.where.split(":")[0]}:${t.template.spec.serviceAccountName}`);
    for (const want of [`deploy/controller.yaml:${CONTROLLER}`, `deploy/webhook.yaml:${WEBHOOK}`, `deploy/agent.yaml:${AGENT}`, `deploy/openshift/agent.yaml:${AGENT}`]) assert.ok(names.includes(want), `${want} among ${names.join(", ")}`);
    const csv = templates.filter((t) => t.where.includes("ClusterServiceVersion")).map((t) => t.template.spec.serviceAccountName);
    assert.deepEqual(csv, [CONTROLLER, WEBHOOK]);
  });

  it("no pod spec but the agent's fixes a UID, GID or fsGroup; each runs as non-root under restricted-v2", () => {
    for (const t of templates.filter((x) => !isAgent(x))) {
      const spec = t.template.spec;
      for (const [what, sc] of [["pod", spec.securityContext ?? {}], ...containers(spec).map((c) => [`container ${c.name}`, c.securityContext ?? {}])] as Array<[string, any]>) {
        for (const f of FIXED_IDS) assert.equal(sc[f], undefined, `${t.where}: ${what} securityContext.${f} is fixed (${sc[f]}); OpenShift's restricted-v2 SCC assigns it`);
      }
      assert.equal(spec.securityContext?.runAsNonRoot, true, `${t.where}: runAsNonRoot`);
      assert.equal(t.template.metadata.annotations?.[REQUIRED_SCC_ANNOTATION], RESTRICTED_SCC, `${t.where}: ${REQUIRED_SCC_ANNOTATION}`);
      for (const c of containers(spec)) {
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${t.where}: ${c.name} allowPrivilegeEscalation`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ["ALL"], `${t.where}: ${c.name} drops all capabilities`);
      }
    }
  });

  it("the agent is the exception by design: privileged, hostPID, root (UID 0), under the privileged SCC", () => {
    const agents = templates.filter(isAgent);
    assert.ok(agents.length >= 2);
    for (const t of agents) {
      const spec = t.template.spec;
      assert.equal(spec.hostPID, true);
      assert.equal(spec.securityContext, undefined, `${t.where}: no pod-level securityContext`);
      assert.deepEqual(containers(spec).map((c) => c.securityContext), [{ privileged: true, runAsUser: 0, readOnlyRootFilesystem: true }]);
      assert.equal(t.template.metadata.annotations?.[REQUIRED_SCC_ANNOTATION], AGENT_SCC);
    }
  });

  it(`the image's USER (${IMAGE_USER}) is numeric and not root, so the kubelet's runAsNonRoot check passes without runAsUser`, () => {
    const m = /^(\d+):(\d+)$/.exec(IMAGE_USER);
    assert.ok(m, `${IMAGE_USER} is uid:gid in digits`);
    assert.notEqual(Number(m[1]), 0);
  });
});

/** deploy/'s rules per service account: [namespaced rules, cluster rules]. */
function deployRules(): Map<string, { ns: any[]; cluster: any[] }> {
  const objs = yamlFiles("deploy").filter((f) => !f.endsWith("sandbox-operator.yaml")).flatMap(docs);
  const roles = new Map(objs.filter((o) => o.kind === "Role" || o.kind === "ClusterRole").map((o) => [`${o.kind}/${o.metadata.name}`, o.rules]));
  const out = new Map<string, { ns: any[]; cluster: any[] }>();
  for (const b of objs.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
    const rules = roles.get(`${b.roleRef.kind}/${b.roleRef.name}`);
    assert.ok(rules, `${b.kind} ${b.metadata.name} refers to ${b.roleRef.kind} ${b.roleRef.name}, which deploy/ has`);
    for (const s of b.subjects.filter((x: any) => x.kind === "ServiceAccount" && x.namespace === NAMESPACE)) {
      const e = out.get(s.name) ?? { ns: [], cluster: [] };
      (b.kind === "RoleBinding" ? e.ns : e.cluster).push(...rules);
      out.set(s.name, e);
    }
  }
  return out;
}

describe("the CSV's RBAC", () => {
  const csv = docs("bundle/manifests/sandbox-operator.clusterserviceversion.yaml")[0];
  const perms = (key: "permissions" | "clusterPermissions", sa: string) => csv.spec.install.spec[key].find((p: any) => p.serviceAccountName === sa)?.rules ?? [];

  it("grants each service account every rule deploy/ grants it, at the same scope", () => {
    const deploy = deployRules();
    assert.deepEqual([...deploy.keys()].sort(), [AGENT, CONTROLLER, WEBHOOK].sort());
    for (const [sa, { ns, cluster }] of deploy) {
      for (const r of ns) assert.ok(perms("permissions", sa).some((x: any) => JSON.stringify(x) === JSON.stringify(r)), `${sa}: namespaced rule ${JSON.stringify(r)} missing from the CSV`);
      for (const r of cluster) assert.ok(perms("clusterPermissions", sa).some((x: any) => JSON.stringify(x) === JSON.stringify(r)), `${sa}: cluster rule ${JSON.stringify(r)} missing from the CSV`);
    }
  });

  it("gives the agent the privileged SCC, its SandboxNode status and its verification pods", () => {
    const cluster = perms("clusterPermissions", AGENT);
    assert.ok(cluster.some((r: any) => r.apiGroups[0] === "security.openshift.io" && r.resources[0] === "securitycontextconstraints" && r.verbs.join() === "use" && r.resourceNames?.join() === AGENT_SCC));
    assert.ok(cluster.some((r: any) => r.resources.includes("sandboxnodes/status") && r.verbs.includes("patch")));
    assert.ok(perms("permissions", AGENT).some((r: any) => r.resources.includes("pods") && r.verbs.includes("create")));
  });

  it("lets the webhook create its two configurations (OLM cannot ship them) and patch only those by name", () => {
    const cluster = perms("clusterPermissions", WEBHOOK).filter((r: any) => r.apiGroups.includes("admissionregistration.k8s.io"));
    assert.deepEqual(cluster.map((r: any) => [r.verbs.includes("create"), r.resourceNames ?? null]), [
      [false, ["sandbox-operator"]],
      [true, null],
    ]);
    assert.deepEqual(cluster[1].verbs, ["create"]);
  });
});
