// Cluster tier, after the operator ran as pods: every right the shipped roles grant its service
// accounts was used by them (the apiserver's audit log says so), or is listed here with why not.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../src/kube/client.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { AGENT, CONTROLLER, NAMESPACE, WEBHOOK } from "../../src/manifests/names.js";
import { grantedRights, parseAuditLog, rightsUsed, serviceAccountUser, unboundAt, unusedRights } from "../harness/rbac-use.js";
import type { ClusterHandle } from "./helpers.js";

/** Rights granted but not used on this cluster tier, each with the reason it is still granted. */
const OPENSHIFT_MC = "OpenShift's MachineConfig path only (test/integration/controller-openshift.test.ts, openshift-install.test.ts)";
export const NOT_USED_HERE: Record<string, Record<string, string>> = {
  [serviceAccountUser(NAMESPACE, CONTROLLER)]: {
    "create machineconfiguration.openshift.io/machineconfigs": OPENSHIFT_MC,
    "patch machineconfiguration.openshift.io/machineconfigs": OPENSHIFT_MC,
    "delete machineconfiguration.openshift.io/machineconfigs": OPENSHIFT_MC,
    "get machineconfiguration.openshift.io/machineconfigs": OPENSHIFT_MC,
    "create machineconfiguration.openshift.io/machineconfigpools": OPENSHIFT_MC,
    "patch machineconfiguration.openshift.io/machineconfigpools": OPENSHIFT_MC,
    "delete machineconfiguration.openshift.io/machineconfigpools": OPENSHIFT_MC,
    "get machineconfiguration.openshift.io/machineconfigpools": OPENSHIFT_MC,
    "get config.openshift.io/infrastructures": "OpenShift's platform detection reads Infrastructure/cluster only where config.openshift.io is served",
    "create /pods/eviction": "spec.rollout.drain only (test/integration/controller-drain.test.ts); the tier's SandboxConfig does not drain",
    "update sandboxing.dev/sandboxconfigs/finalizers": "no request uses it: OpenShift's OwnerReferencesPermissionEnforcement admission checks it when a SandboxNode's ownerReference blocks its SandboxConfig's deletion",
  },
  [serviceAccountUser(NAMESPACE, AGENT)]: {
    "use security.openshift.io/securitycontextconstraints": "no request uses it: OpenShift's SCC admission checks it when the agent's pods are created",
  },
};

export function rbacUseSuite(cluster: ClusterHandle): void {
  describe("RBAC against use (the apiserver's audit log of the operator's service accounts)", () => {
    it("no request of the operator's components was refused, and every granted right was used or is listed with why", () => {
      const c = cluster();
      assert.ok(c.cp.auditLogPath, "the tier's apiserver writes an audit log");
      const manifests = parseAllDocuments(readFileSync(join(repoRoot(), "deploy", "sandbox-operator.yaml"), "utf8")).map((d) => d.toJS() as KubeObject).filter(Boolean);
      const granted = grantedRights(manifests);
      const users = [CONTROLLER, WEBHOOK, AGENT].map((n) => serviceAccountUser(NAMESPACE, n));
      for (const u of users) assert.ok(granted.get(u)?.size, `deploy/sandbox-operator.yaml grants ${u} something`);
      const events = parseAuditLog(readFileSync(c.cp.auditLogPath, "utf8"));
      const { used, refused } = rightsUsed(events, users);
      // Once uninstall deletes a component's binding, its still-running pod is refused: that is expected.
      const unbound = unboundAt(events, manifests);
      const whileBound = refused.filter((r) => !unbound(r.user, r.at ?? ""));
      process.stderr.write(`[rbac] refused after the binding's deletion (uninstall): ${refused.length - whileBound.length}\n`);
      assert.deepEqual(whileBound, [], "requests of ours the apiserver refused while the roles were installed (a missing right, or a policy we break)");
      for (const u of users) assert.ok(used.get(u)?.size, `${u} made requests (the audit log covers it)`);
      const unused = unusedRights(granted, used);
      const report = [...unused].map(([u, rs]) => `${u}:\n  ${rs.join("\n  ")}`).join("\n");
      process.stderr.write(`[rbac] unused rights:\n${report}\n[rbac] used:\n${[...used].map(([u, rs]) => `${u}:\n  ${[...rs].sort().join("\n  ")}`).join("\n")}\n`);
      for (const [u, rs] of unused) for (const r of rs) assert.ok(NOT_USED_HERE[u]?.[r], `${u} is granted "${r}" but never used it on the cluster tier: remove the right, or list it in NOT_USED_HERE with why`);
      for (const [u, rs] of Object.entries(NOT_USED_HERE)) for (const r of Object.keys(rs)) assert.ok(granted.get(u)?.has(r), `NOT_USED_HERE lists "${r}" for ${u}, which the roles no longer grant: drop the entry`);
    });
  });
}
