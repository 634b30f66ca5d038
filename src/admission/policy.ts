// The pod sandboxing policy as pure functions: which mode a namespace is in, which RuntimeClasses
// count as sandboxes, and for one pod the JSON patch to apply and the refusal or warnings to return.
import { BACKEND_CLASS, DEFAULT_RUNTIMECLASS, type SandboxConfigSpec } from "../api/index.js";
import { exemptNamespaces, exemptsDaemonSets, grantedHostAccess, hostAccessRefusal, isDaemonSetPod, refusedHostAccess, type HostAccess, type OwnerReference } from "./policy-host-access.js";

export { ALWAYS_EXEMPT_NAMESPACES } from "./policy-host-access.js";

export const POLICY_LABEL = "sandboxing.dev/policy";
export const DECISION_ANNOTATION = "sandboxing.dev/admission";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "sandbox-operator";
/** Pod annotation prefixes that reconfigure a sandbox (Kata and gVisor read them from the pod). */
export const SANDBOX_ANNOTATION_PREFIXES = ["io.katacontainers.", "dev.gvisor."] as const;
/** Below this memory limit a Kata guest (kernel + agent) cannot run its workload (kata#6533, OSC#280). */
export const KATA_MIN_MEMORY_BYTES = 256 * 1024 * 1024;

export type Mode = "enforce" | "audit" | "off";
export const MODES: readonly Mode[] = ["enforce", "audit", "off"];

/** A RuntimeClass as far as the policy cares: does it exist and is it ours. */
export interface RuntimeClassInfo {
  name: string;
  handler?: string;
  managed: boolean;
}

export interface PolicyContext {
  /** spec of SandboxConfig `cluster`, null when there is none or it is being deleted (uninstall). */
  config: SandboxConfigSpec | null;
  runtimeClasses: ReadonlyMap<string, RuntimeClassInfo>;
  namespace: string;
  /** Labels of the pod's namespace; undefined when the namespace is unknown. */
  namespaceLabels?: Record<string, string>;
  /** The mode as the apiserver matched it (the webhook entry that called); wins over the labels. */
  mode?: Mode;
  operatorNamespace: string;
  /** The requesting user (AdmissionRequest userInfo.username): DaemonSet pods are trusted only from the DaemonSet controller. */
  userName?: string;
}

export interface JsonPatchOp {
  op: "add" | "replace" | "remove";
  path: string;
  value?: unknown;
}

interface Container {
  name: string;
  image?: string;
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[] } };
  resources?: { limits?: Record<string, string | number> };
}

export interface Pod {
  metadata: { name?: string; generateName?: string; namespace?: string; annotations?: Record<string, string>; ownerReferences?: OwnerReference[] };
  spec: {
    runtimeClassName?: string | null;
    hostNetwork?: boolean;
    hostPID?: boolean;
    hostIPC?: boolean;
    volumes?: Array<{ name: string; hostPath?: { path: string } }>;
    containers?: Container[];
    initContainers?: Container[];
    ephemeralContainers?: Container[];
  };
}

export interface MutateResult {
  mode: Mode | "exempt";
  patch: JsonPatchOp[];
  /** The annotation value written, when one is. */
  decision?: string;
}

export interface ValidateResult {
  mode: Mode | "exempt";
  allowed: boolean;
  /** Why the pod is refused; names the field and what to do. */
  message?: string;
  warnings: string[];
}

/**
 * The mode for a namespace: its label, else the cluster default; exempt namespaces are never
 * touched. Without a SandboxConfig (not installed yet, or uninstalling) there is no sandbox to
 * enforce: every namespace is off, so no class that is gone gets injected.
 */
export function modeFor(ctx: Pick<PolicyContext, "namespace" | "namespaceLabels" | "config" | "operatorNamespace" | "mode">): Mode | "exempt" {
  if (exemptNamespaces(ctx.config, ctx.operatorNamespace).includes(ctx.namespace)) return "exempt";
  if (!ctx.config) return "off";
  if (ctx.mode) return ctx.mode;
  const label = ctx.namespaceLabels?.[POLICY_LABEL];
  if (label && (MODES as readonly string[]).includes(label)) return label as Mode;
  return ctx.config?.podPolicy?.defaultMode ?? "off";
}

/** The mode for one pod: its namespace's, unless it is a DaemonSet pod the config leaves alone. */
export function podMode(pod: Pod, ctx: PolicyContext): Mode | "exempt" {
  if (exemptsDaemonSets(ctx.config) && isDaemonSetPod(pod, ctx.userName)) return "exempt";
  return modeFor(ctx);
}

/** The general class name the config publishes (default `sandboxed`). */
export function generalClass(config: SandboxConfigSpec | null): string {
  return config?.runtimeClassName ?? DEFAULT_RUNTIMECLASS;
}

/** Every RuntimeClass name the config publishes, with the backend behind it (undefined = picked per node). */
export function publishedClasses(config: SandboxConfigSpec | null): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>([[generalClass(config), undefined]]);
  for (const backend of config?.runtimes.allowed ?? []) out.set(BACKEND_CLASS[backend], backend);
  for (const v of config?.variants ?? []) out.set(v.name, v.backend);
  return out;
}

/** Classes a pod may name to count as sandboxed: published by the config and not held by someone else. */
export function sandboxClasses(ctx: Pick<PolicyContext, "config" | "runtimeClasses">): string[] {
  return [...publishedClasses(ctx.config).keys()].filter((name) => ctx.runtimeClasses.get(name)?.managed !== false);
}

function allContainers(pod: Pod): Array<[string, Container]> {
  return [
    ...(pod.spec.initContainers ?? []).map((c) => ["init container", c] as [string, Container]),
    ...(pod.spec.containers ?? []).map((c) => ["container", c] as [string, Container]),
    ...(pod.spec.ephemeralContainers ?? []).map((c) => ["ephemeral container", c] as [string, Container]),
  ];
}

/** Container privileges (privileged, added capabilities): inside a sandbox they act on its own kernel. */
export function containerPrivileges(pod: Pod): string[] {
  const out: string[] = [];
  for (const [what, c] of allContainers(pod)) {
    if (c.securityContext?.privileged) out.push(`${what} ${c.name} is privileged`);
    const add = c.securityContext?.capabilities?.add ?? [];
    if (add.length) out.push(`${what} ${c.name} adds capabilities ${add.join(",")}`);
  }
  return out;
}

/** Host privileges a pod asks for, one phrase each ("container app is privileged"). */
export function hostPrivileges(pod: Pod): string[] {
  const out = containerPrivileges(pod);
  for (const field of ["hostNetwork", "hostPID", "hostIPC"] as const) if (pod.spec[field]) out.push(`${field} is true`);
  for (const v of pod.spec.volumes ?? []) if (v.hostPath) out.push(`volume ${v.name} mounts hostPath ${v.hostPath.path}`);
  return out;
}

/** Sandbox annotations on the pod that the config does not allow. */
export function forbiddenAnnotations(pod: Pod, config: SandboxConfigSpec | null): string[] {
  const allowed = new Set(config?.allowedSandboxAnnotations ?? []);
  return Object.keys(pod.metadata.annotations ?? {})
    .filter((k) => SANDBOX_ANNOTATION_PREFIXES.some((p) => k.startsWith(p)) && !allowed.has(k))
    .sort();
}

const UNITS: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, m: 1e-3 };

/** Bytes of a memory quantity ("512Mi", "1G", "1e9"); undefined when it cannot be read. */
export function quantityBytes(q: string | number | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === "number") return q;
  const m = /^([0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$/.exec(q.trim());
  const unit = m ? UNITS[m[2]!] : undefined;
  return m && unit !== undefined ? Number(m[1]) * unit : undefined;
}

/** Could this class run the pod in a Kata VM (a kata-* backend, or the general class, which may pick Kata)? */
function mayRunKata(cls: string, config: SandboxConfigSpec | null): boolean {
  if (!publishedClasses(config).has(cls)) return false;
  const backend = publishedClasses(config).get(cls);
  if (backend === undefined) return (config?.runtimes.allowed ?? ["kata-qemu"]).some((b) => b.startsWith("kata-"));
  return backend.startsWith("kata-");
}

function memoryWarning(pod: Pod, cls: string, config: SandboxConfigSpec | null): string | undefined {
  if (!mayRunKata(cls, config)) return undefined;
  let total = 0;
  for (const c of pod.spec.containers ?? []) {
    const bytes = quantityBytes(c.resources?.limits?.memory);
    if (bytes === undefined) return undefined; // no limit on some container: the VM is not capped by it
    total += bytes;
  }
  if (!pod.spec.containers?.length || total >= KATA_MIN_MEMORY_BYTES) return undefined;
  return `pod memory limits add up to ${Math.round(total / 2 ** 20)}Mi, below the 256Mi a Kata guest needs besides RuntimeClass ${cls}'s overhead; the VM may be OOM-killed: raise spec.containers[*].resources.limits.memory`;
}

const list = (xs: string[]) => xs.join(", ");

/** Is the general class published (exists and is ours)? Only then may it be injected. */
export function generalClassExists(ctx: Pick<PolicyContext, "config" | "runtimeClasses">): boolean {
  return ctx.runtimeClasses.get(generalClass(ctx.config))?.managed === true;
}

/** The mutation: inject the general class in enforce mode, and record the decision as an annotation. */
export function mutatePod(pod: Pod, ctx: PolicyContext): MutateResult {
  const mode = podMode(pod, ctx);
  if (mode === "exempt" || mode === "off") return { mode, patch: [] };
  const allowed = sandboxClasses(ctx);
  const cls = pod.spec.runtimeClassName ?? undefined;
  const privileges = hostPrivileges(pod);
  const patch: JsonPatchOp[] = [];
  const reasons: string[] = [];
  if (mode === "enforce") {
    // The apiserver re-invokes this webhook when a later mutation (e.g. RuntimeClass overhead)
    // changed the pod; then the class is the one we injected and the record must say so still.
    const previous = pod.metadata.annotations?.[DECISION_ANNOTATION];
    if (cls && previous?.startsWith(`enforce: runtimeClassName ${cls} injected`)) return { mode, patch: [], decision: previous };
    if (!cls) {
      // Never inject a class that does not exist (not published yet, or removed): validation refuses the pod and says why.
      if (!generalClassExists(ctx)) return { mode, patch: [] };
      patch.push({ op: "add", path: "/spec/runtimeClassName", value: generalClass(ctx.config) });
      reasons.push(`runtimeClassName ${generalClass(ctx.config)} injected`);
    } else if (allowed.includes(cls)) {
      reasons.push(`runtimeClassName ${cls} is a sandbox`);
    } else {
      return { mode, patch: [] }; // refused by validation; nothing to record
    }
    const inside = containerPrivileges(pod);
    if (inside.length) reasons.push(`host privileges stay inside the sandbox (${list(inside)})`);
    const granted = grantedHostAccess(pod, ctx.config, ctx.namespace);
    if (granted.length) reasons.push(`host access granted by SandboxConfig spec.podPolicy.allowedHostAccess (${list(granted.map((h) => h.field))})`);
    return withDecision(pod, patch, `enforce: ${reasons.join("; ")}`, mode);
  }
  // audit: nothing changes but the record of what enforce would have done
  if (!cls) reasons.push(`enforce would inject runtimeClassName ${generalClass(ctx.config)}`);
  else if (!allowed.includes(cls)) reasons.push(`enforce would refuse runtimeClassName ${cls} (allowed: ${list(allowed)})`);
  else reasons.push(`runtimeClassName ${cls} is a sandbox`);
  if (privileges.length && !(cls && allowed.includes(cls))) reasons.push(`host privileges outside a sandbox (${list(privileges)})`);
  const refused = refusedHostAccess(pod, ctx.config, ctx.namespace);
  if (refused.length) reasons.push(`enforce would refuse host access (${list(refused.map((h) => h.field))})`);
  return withDecision(pod, patch, `audit: ${reasons.join("; ")}`, mode);
}

function withDecision(pod: Pod, patch: JsonPatchOp[], decision: string, mode: Mode): MutateResult {
  if (pod.metadata.annotations) patch.push({ op: "add", path: `/metadata/annotations/${DECISION_ANNOTATION.replace(/~/g, "~0").replace(/\//g, "~1")}`, value: decision });
  else patch.push({ op: "add", path: "/metadata/annotations", value: { [DECISION_ANNOTATION]: decision } });
  return { mode, patch, decision };
}

/** Why an enforce namespace refuses a pod outside the sandbox classes, and what to do. */
function notSandboxed(where: string, cls: string | undefined, ctx: PolicyContext, privileges: string[], refusedHost: HostAccess[]): string {
  const held = cls && publishedClasses(ctx.config).has(cls) ? ` (a RuntimeClass ${cls} exists that sandbox-operator does not manage)` : "";
  const general = generalClass(ctx.config);
  const allowed = list(sandboxClasses(ctx));
  const what = cls
    ? `spec.runtimeClassName ${cls} is not a sandbox RuntimeClass${held}`
    : generalClassExists(ctx)
      ? "spec.runtimeClassName is empty (the sandbox-operator mutating webhook did not run)"
      : `spec.runtimeClassName is empty and RuntimeClass ${general} does not exist (the controller publishes it once a node is verified: kubectl get sandboxconfig cluster), so there is no sandbox to inject`;
  const priv = privileges.length ? `; it also asks for host privileges (${list(privileges)}), which are allowed only in a sandbox` : "";
  const host = refusedHost.length ? `. Even sandboxed: ${hostAccessRefusal("", ctx.namespace, refusedHost)}` : "";
  const fix = cls || generalClassExists(ctx) ? `set runtimeClassName to one of ${allowed}, or leave it empty to get ${general}` : `wait until RuntimeClass ${general} exists, or set runtimeClassName to one of ${allowed}`;
  return `${where}: ${what}${priv}. Namespace ${ctx.namespace} enforces sandboxing (label ${POLICY_LABEL}=enforce or the SandboxConfig default): ${fix}${host}`;
}

/** The validation of the final pod (after every mutation): refusals and warnings. */
export function validatePod(pod: Pod, ctx: PolicyContext): ValidateResult {
  const mode = podMode(pod, ctx);
  if (mode === "exempt") return { mode, allowed: true, warnings: [] };
  const where = `pod ${pod.metadata.name ?? pod.metadata.generateName ?? ""} in namespace ${ctx.namespace}`;
  const bad = forbiddenAnnotations(pod, ctx.config);
  if (bad.length) {
    return {
      mode,
      allowed: false,
      message: `${where}: metadata.annotations ${list(bad)} reconfigure the sandbox and are not allowed: remove them, or have a cluster admin add them to SandboxConfig cluster spec.allowedSandboxAnnotations`,
      warnings: [],
    };
  }
  const allowed = sandboxClasses(ctx);
  const cls = pod.spec.runtimeClassName ?? undefined;
  const sandboxed = cls !== undefined && allowed.includes(cls);
  const privileges = hostPrivileges(pod);
  const warnings: string[] = [];
  const refusedHost = refusedHostAccess(pod, ctx.config, ctx.namespace);
  if (mode === "enforce" && !sandboxed) return { mode, allowed: false, message: notSandboxed(where, cls, ctx, privileges, refusedHost), warnings: [] };
  if (mode === "enforce" && refusedHost.length) return { mode, allowed: false, message: hostAccessRefusal(where, ctx.namespace, refusedHost), warnings: [] };
  if (mode === "audit" && !sandboxed) {
    warnings.push(
      cls
        ? `namespace ${ctx.namespace} audits sandboxing: runtimeClassName ${cls} is not a sandbox RuntimeClass (allowed: ${list(allowed)}); enforce mode would refuse this pod`
        : `namespace ${ctx.namespace} audits sandboxing: this pod runs without a sandbox; enforce mode would set runtimeClassName ${generalClass(ctx.config)}`,
    );
    if (privileges.length) warnings.push(`host privileges outside a sandbox: ${list(privileges)}`);
  }
  if (mode === "audit" && refusedHost.length) warnings.push(`namespace ${ctx.namespace} audits sandboxing: enforce mode would refuse this pod: ${hostAccessRefusal("", ctx.namespace, refusedHost)}`);
  const mem = sandboxed ? memoryWarning(pod, cls, ctx.config) : undefined;
  if (mem) warnings.push(mem);
  return { mode, allowed: true, warnings };
}

/**
 * An UPDATE of a pod, the ephemeralcontainers subresource included. Host namespaces, volumes and
 * runtimeClassName are immutable, so an update can add only two things that matter: a sandbox
 * annotation (the kubelet passes the pod's annotations to a sandbox it recreates) and an
 * ephemeral container (kubectl debug), which runs outside a sandbox when the pod does.
 */
export function validatePodUpdate(old: Pod, pod: Pod, ctx: PolicyContext): ValidateResult {
  const mode = podMode(pod, ctx);
  if (mode === "exempt") return { mode, allowed: true, warnings: [] };
  const where = `pod ${pod.metadata.name ?? ""} in namespace ${ctx.namespace}`;
  const before = old.metadata.annotations ?? {};
  const set = forbiddenAnnotations(pod, ctx.config).filter((k) => before[k] !== pod.metadata.annotations?.[k]);
  if (set.length) {
    return {
      mode,
      allowed: false,
      message: `${where}: this update sets metadata.annotations ${list(set)}, which reconfigure the sandbox and are not allowed: remove them, or have a cluster admin add them to SandboxConfig cluster spec.allowedSandboxAnnotations`,
      warnings: [],
    };
  }
  const cls = pod.spec.runtimeClassName ?? undefined;
  if (mode !== "enforce" || (cls !== undefined && sandboxClasses(ctx).includes(cls))) return { mode, allowed: true, warnings: [] };
  const known = new Set((old.spec.ephemeralContainers ?? []).map((c) => c.name));
  const added = (pod.spec.ephemeralContainers ?? []).map((c, i) => ({ c, i })).filter(({ c }) => !known.has(c.name));
  const privileged = added.flatMap(({ c, i }) => {
    const p = containerPrivileges({ metadata: {}, spec: { ephemeralContainers: [c] } });
    return p.length ? [`spec.ephemeralContainers[${i}] (${p.join(", ")})`] : [];
  });
  if (!privileged.length) return { mode, allowed: true, warnings: [] };
  return {
    mode,
    allowed: false,
    message: `${where}: ${list(privileged)} asks for host privileges, but the pod runs outside a sandbox (runtimeClassName ${cls ?? "empty"}; it was created before namespace ${ctx.namespace} enforced sandboxing, or was exempt), so they would act on the node: debug it without privileged/capabilities, or recreate the pod so it runs sandboxed`,
    warnings: [],
  };
}

export type AdmitResult = MutateResult & ValidateResult;

/**
 * The mutating webhook's whole answer: the patch, and the validation of the pod as the patch
 * leaves it, so one call per pod can inject, refuse and warn (the validating webhook is only a
 * safety net for pods changed after us; see desiredWebhooks.ts).
 */
export function admitPod(pod: Pod, ctx: PolicyContext): AdmitResult {
  const m = mutatePod(pod, ctx);
  const injected = m.patch.find((op) => op.path === "/spec/runtimeClassName");
  const after: Pod = injected ? { ...pod, spec: { ...pod.spec, runtimeClassName: injected.value as string } } : pod;
  const v = validatePod(after, ctx);
  return v.allowed ? { ...v, ...m, mode: m.mode } : { ...v, patch: [] };
}
