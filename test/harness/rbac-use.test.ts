// The RBAC-against-use comparison on hand-written manifests and audit lines (the cluster tier runs it on real ones).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../../src/kube/client.js";
import { grantedRights, parseAuditLog, rightsUsed, unboundAt, unusedRights } from "./rbac-use.js";

const manifests = [
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "c" }, rules: [{ apiGroups: [""], resources: ["nodes", "pods/log"], verbs: ["get", "patch"] }] },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "c" }, roleRef: { kind: "ClusterRole", name: "c" }, subjects: [{ kind: "ServiceAccount", name: "ctl", namespace: "ns" }] },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "r", namespace: "ns" }, rules: [{ apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] }] },
  { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "r", namespace: "ns" }, roleRef: { kind: "Role", name: "r" }, subjects: [{ kind: "ServiceAccount", name: "ctl" }, { kind: "User", name: "someone" }] },
] as unknown as KubeObject[];
const USER = "system:serviceaccount:ns:ctl";

const line = (o: Record<string, unknown>) => JSON.stringify({ kind: "Event", level: "Metadata", user: { username: USER }, ...o });
const log = [
  line({ auditID: "1", stage: "ResponseStarted", verb: "get", objectRef: { resource: "nodes", apiGroup: "" }, responseStatus: { code: 200 } }),
  line({ auditID: "1", stage: "ResponseComplete", verb: "get", objectRef: { resource: "nodes", apiGroup: "" }, responseStatus: { code: 200 } }),
  line({ auditID: "2", stage: "ResponseComplete", verb: "get", objectRef: { resource: "pods", subresource: "log" }, responseStatus: { code: 200 } }),
  line({ auditID: "3", stage: "ResponseComplete", verb: "delete", objectRef: { resource: "nodes", name: "n1" }, responseStatus: { code: 403, message: "forbidden" } }),
  line({ auditID: "4", stage: "ResponseComplete", verb: "get", requestURI: "/apis" }),
  JSON.stringify({ auditID: "5", stage: "ResponseComplete", verb: "patch", user: { username: "system:serviceaccount:ns:other" }, objectRef: { resource: "nodes" }, responseStatus: { code: 200 } }),
  "",
].join("\n");

describe("rbac-use", () => {
  it("grants follow bindings (a RoleBinding's subject without namespace is in the binding's), subresources kept", () => {
    const g = grantedRights(manifests);
    assert.deepEqual([...g.keys()], [USER]);
    assert.deepEqual([...g.get(USER)!].sort(), ["create coordination.k8s.io/leases", "get /nodes", "get /pods/log", "patch /nodes", "patch /pods/log"]);
  });

  it("a binding to a role the manifests lack is an error naming both", () => {
    assert.throws(() => grantedRights([manifests[1]!]), /ClusterRoleBinding c refers to ClusterRole c/);
  });

  it("one event per request, 403s reported not counted, other users and non-resource URLs ignored; unused = granted - used", () => {
    const events = parseAuditLog(log);
    assert.equal(events.length, 5);
    const { used, refused } = rightsUsed(events, [USER]);
    assert.deepEqual([...used.get(USER)!].sort(), ["get /nodes", "get /pods/log"]);
    assert.deepEqual(refused, [{ user: USER, right: "delete /nodes", name: "n1", message: "forbidden", at: undefined }]);
    assert.deepEqual(unusedRights(grantedRights(manifests), used).get(USER), ["create coordination.k8s.io/leases", "patch /nodes", "patch /pods/log"]);
  });

  it("a user is unbound between the deletion of its binding and the next write of one (apply again)", () => {
    const w = (id: string, verb: string, at: string, name = "c") => ({ auditID: id, stage: "ResponseComplete", verb, user: { username: "admin" }, objectRef: { apiGroup: "rbac.authorization.k8s.io", resource: "clusterrolebindings", name }, responseStatus: { code: 200 }, stageTimestamp: at });
    const unbound = unboundAt([w("a", "patch", "2026-12-02T01:00:00.000000Z"), w("b", "delete", "2026-12-02T02:00:00.000000Z"), w("c", "create", "2026-12-02T03:00:00.000000Z"), w("d", "delete", "2026-12-02T02:30:00.000000Z", "other")], manifests);
    assert.equal(unbound(USER, "2026-12-02T00:30:00.000000Z"), false, "before any write: not known to be unbound");
    assert.equal(unbound(USER, "2026-12-02T01:30:00.000000Z"), false);
    assert.equal(unbound(USER, "2026-12-02T02:30:00.000000Z"), true);
    assert.equal(unbound(USER, "2026-12-02T03:30:00.000000Z"), false);
  });
});
