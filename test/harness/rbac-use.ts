// RBAC against use: the rights each service account's roles grant (from the shipped manifests)
// and the requests it made (from the apiserver's JSON audit log), as comparable "verb group/resource" keys.
import type { KubeObject } from "../../src/kube/client.js";

/** `verb apiGroup/resource[/subresource]`, apiGroup "" for the core group (e.g. `patch /nodes`). */
export type RightKey = string;

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
}
interface RoleLike extends KubeObject {
  rules?: PolicyRule[];
}
interface BindingLike extends KubeObject {
  roleRef: { kind: string; name: string };
  subjects?: Array<{ kind: string; name: string; namespace?: string }>;
}

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: { apiGroup?: string; resource?: string; subresource?: string; name?: string; namespace?: string };
  responseStatus?: { code?: number; message?: string };
  requestURI?: string;
  stageTimestamp?: string;
}

export function rightKey(verb: string, apiGroup: string, resource: string, subresource?: string): RightKey {
  return `${verb} ${apiGroup}/${resource}${subresource ? `/${subresource}` : ""}`;
}

export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/** A binding's ServiceAccount subjects as users (a subject without namespace is in the binding's). */
function serviceAccountSubjects(b: BindingLike): string[] {
  return (b.subjects ?? []).filter((s) => s.kind === "ServiceAccount").map((s) => serviceAccountUser(s.namespace ?? b.metadata.namespace ?? "", s.name));
}

/** Per service-account user: every right its (Cluster)RoleBindings grant in the given manifests. */
export function grantedRights(manifests: KubeObject[]): Map<string, Set<RightKey>> {
  const roles = new Map<string, RoleLike>();
  for (const m of manifests) if (m.kind === "Role" || m.kind === "ClusterRole") roles.set(`${m.kind}/${m.metadata.namespace ?? ""}/${m.metadata.name}`, m as RoleLike);
  const out = new Map<string, Set<RightKey>>();
  for (const m of manifests) {
    if (m.kind !== "RoleBinding" && m.kind !== "ClusterRoleBinding") continue;
    const b = m as BindingLike;
    const role = roles.get(`${b.roleRef.kind}/${b.roleRef.kind === "Role" ? (b.metadata.namespace ?? "") : ""}/${b.roleRef.name}`);
    if (!role) throw new Error(`${m.kind} ${b.metadata.name} refers to ${b.roleRef.kind} ${b.roleRef.name}, which the manifests do not define`);
    const rights = ruleRights(role.rules ?? []);
    for (const user of serviceAccountSubjects(b)) {
      const set = out.get(user) ?? new Set<RightKey>();
      for (const r of rights) set.add(r);
      out.set(user, set);
    }
  }
  return out;
}

function ruleRights(rules: PolicyRule[]): RightKey[] {
  return rules.flatMap((r) =>
    (r.apiGroups ?? []).flatMap((g) =>
      (r.resources ?? []).flatMap((res) => {
        const [resource = "", sub] = res.split("/");
        return (r.verbs ?? []).map((v) => rightKey(v, g, resource, sub));
      }),
    ),
  );
}

/** Parses a JSON-lines audit log into one event per request (the last stage seen for its auditID). */
export function parseAuditLog(text: string): AuditEvent[] {
  const byId = new Map<string, AuditEvent>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as AuditEvent;
    byId.set(e.auditID, e);
  }
  return [...byId.values()];
}

export interface Use {
  /** Per user: the resource requests it made that were not refused by authorization. */
  used: Map<string, Set<RightKey>>;
  /** Requests refused with 403 (authorization or admission), with the apiserver's message. */
  refused: Array<{ user: string; right: RightKey; name?: string; message?: string; at?: string }>;
}

export function rightsUsed(events: AuditEvent[], users: Iterable<string>): Use {
  const wanted = new Set(users);
  const used = new Map<string, Set<RightKey>>();
  const refused: Use["refused"] = [];
  for (const e of events) {
    const ref = e.objectRef;
    if (!wanted.has(e.user.username) || !ref?.resource) continue; // discovery and other non-resource URLs
    const right = rightKey(e.verb, ref.apiGroup ?? "", ref.resource, ref.subresource);
    if (e.responseStatus?.code === 403) {
      refused.push({ user: e.user.username, right, name: ref.name, message: e.responseStatus.message, at: e.stageTimestamp });
      continue;
    }
    const set = used.get(e.user.username) ?? new Set<RightKey>();
    set.add(right);
    // Server-side apply of an object that did not exist is a patch answered 201: it needed create too.
    if (e.verb === "patch" && e.responseStatus?.code === 201) set.add(rightKey("create", ref.apiGroup ?? "", ref.resource, ref.subresource));
    used.set(e.user.username, set);
  }
  return { used, refused };
}

/** Granted rights never used, per user, sorted. */
export function unusedRights(granted: Map<string, Set<RightKey>>, used: Map<string, Set<RightKey>>): Map<string, RightKey[]> {
  const out = new Map<string, RightKey[]>();
  for (const [user, rights] of granted) {
    const u = used.get(user) ?? new Set();
    const left = [...rights].filter((r) => !u.has(r)).sort();
    if (left.length) out.set(user, left);
  }
  return out;
}

/**
 * Whether a user's bindings were deleted at a time (the latest write of one of its (Cluster)RoleBindings
 * before it, from the audit log, was a delete): a refusal then is an uninstall's, not a missing right.
 */
export function unboundAt(events: AuditEvent[], manifests: KubeObject[]): (user: string, at: string) => boolean {
  const subjectsOf = new Map<string, string[]>();
  for (const m of manifests) {
    if (m.kind !== "RoleBinding" && m.kind !== "ClusterRoleBinding") continue;
    const b = m as BindingLike;
    subjectsOf.set(`${m.kind === "RoleBinding" ? "rolebindings" : "clusterrolebindings"}/${b.metadata.name}`, serviceAccountSubjects(b));
  }
  const writes = new Map<string, Array<{ at: string; deleted: boolean }>>();
  for (const e of events) {
    const ref = e.objectRef;
    if (ref?.apiGroup !== "rbac.authorization.k8s.io" || !e.stageTimestamp || e.stage !== "ResponseComplete" || (e.responseStatus?.code ?? 0) >= 300) continue;
    for (const u of subjectsOf.get(`${ref.resource}/${ref.name}`) ?? []) writes.set(u, [...(writes.get(u) ?? []), { at: e.stageTimestamp, deleted: e.verb === "delete" }]);
  }
  return (user, at) => {
    const before = (writes.get(user) ?? []).filter((w) => w.at <= at).sort((a, b) => (a.at < b.at ? -1 : 1));
    return before.at(-1)?.deleted ?? false;
  };
}
