// The admission webhook configurations (and cert-manager objects) as pure builders, shared by the
// webhook's own reconciler (caBundle, selectors) and the manifests in deploy/.
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, POLICY_LABEL, ALWAYS_EXEMPT_NAMESPACES, type Mode } from "./policy.js";

export const WEBHOOK_CONFIG_NAME = "sandbox-operator";
export const DEFAULT_SERVICE_NAME = "sandbox-operator-webhook";
export const DEFAULT_NAMESPACE = "sandbox-operator-system";
export const PATHS = { mutatePods: "/mutate-pods", validatePods: "/validate-pods", validateConfig: "/validate-sandboxconfigs" } as const;
/**
 * Pod webhooks are called at <path>/<mode>: the apiserver has already matched the namespace to
 * its mode with the namespaceSelector, so the webhook needs no namespace cache and cannot disagree.
 */
export const podPath = (base: string, mode: Mode) => `${base}/${mode}`;
/** Short for enforce (the pod waits), shorter where the call is best-effort and a hung webhook must not stall pod creation. */
export const TIMEOUTS = { enforce: 5, ignore: 3, config: 5 } as const;

export interface WebhookOptions {
  /** The operator namespace: never touched, and where the Service lives. */
  namespace: string;
  serviceName?: string;
  /** PEM bundle of the CA(s) that sign the serving certificate; omitted in cert-manager mode. */
  caBundle?: string;
  /** Call the webhook at this base URL (https://127.0.0.1:9443) instead of through the Service; for tests and out-of-cluster runs. */
  url?: string;
  /** SandboxConfig spec.podPolicy.defaultMode: decides which side unlabelled namespaces fall on. */
  defaultMode?: Mode;
  /** SandboxConfig spec.podPolicy.exemptions.namespaces: never selected, like kube-system and the operator namespace. */
  exemptNamespaces?: string[];
  /**
   * The sandbox classes pods may name (policy.sandboxClasses). When given, the enforce validating
   * webhook is called only for pods that end up outside them or carry sandbox annotations: the
   * mutating webhook has already judged every other pod. Without it, it is called for every pod.
   */
  sandboxClasses?: string[];
  /** cert-manager mode: the CA injector fills caBundle from this Certificate (namespace/name). */
  certManagerCertificate?: string;
}

type Requirement = { key: string; operator: "In" | "NotIn"; values: string[] };

/** Namespace selectors per mode: disjoint, covering every namespace but the exempt ones; a label-less namespace (or an unknown label value) follows the cluster default. */
export function namespaceSelectors(o: Pick<WebhookOptions, "namespace" | "defaultMode" | "exemptNamespaces">): Record<Mode, Requirement[]> {
  const exempt: Requirement = { key: "kubernetes.io/metadata.name", operator: "NotIn", values: [...new Set([...ALWAYS_EXEMPT_NAMESPACES, o.namespace, ...(o.exemptNamespaces ?? [])])] };
  const def = o.defaultMode ?? "off";
  const modes: Mode[] = ["enforce", "audit", "off"];
  const sel = (m: Mode): Requirement[] => [m === def ? { key: POLICY_LABEL, operator: "NotIn", values: modes.filter((x) => x !== m) } : { key: POLICY_LABEL, operator: "In", values: [m] }, exempt];
  return { enforce: sel("enforce"), audit: sel("audit"), off: sel("off") };
}

function clientConfig(o: WebhookOptions, path: string): Record<string, unknown> {
  const target = o.url ? { url: o.url.replace(/\/$/, "") + path } : { service: { namespace: o.namespace, name: o.serviceName ?? DEFAULT_SERVICE_NAME, path, port: 443 } };
  return o.caBundle && !o.certManagerCertificate ? { ...target, caBundle: Buffer.from(o.caBundle).toString("base64") } : target;
}

/**
 * In off namespaces only sandbox annotations and the memory guard (a named RuntimeClass) matter:
 * the apiserver evaluates this and does not call the webhook for every other pod.
 */
const HAS_SANDBOX_ANNOTATION = "(has(object.metadata.annotations) && object.metadata.annotations.exists(k, k.startsWith('io.katacontainers.') || k.startsWith('dev.gvisor.')))";
/** An UPDATE that changes the annotations of a pod carrying a sandbox annotation: the only update besides ephemeral containers that can reconfigure a sandbox. */
const SANDBOX_ANNOTATIONS_CHANGED = `${HAS_SANDBOX_ANNOTATION} && (!has(oldObject.metadata.annotations) || object.metadata.annotations != oldObject.metadata.annotations)`;

/** One matchCondition: `create` judges CREATEs, `update` UPDATEs (pods and pods/ephemeralcontainers). */
const onCreateOrUpdate = (name: string, create: string, update: string) => [{ name, expression: `request.operation == 'CREATE' ? (${create}) : (${update})` }];

export const OFF_MATCH = onCreateOrUpdate(
  "sandbox-annotations-or-runtimeclass",
  `(has(object.spec.runtimeClassName) && object.spec.runtimeClassName != '') || ${HAS_SANDBOX_ANNOTATION}`,
  SANDBOX_ANNOTATIONS_CHANGED,
);

/**
 * Safety net after every mutation: a pod outside our classes, or one carrying sandbox annotations
 * (every pod when the class list is unknown); on UPDATE, changed sandbox annotations and every
 * ephemeral container (it may ask for privileges in a pod that runs outside a sandbox).
 */
export function enforceSafetyNet(classes?: string[]) {
  const list = (classes ?? []).map((c) => `'${c}'`).join(", ");
  const create = classes?.length ? `!has(object.spec.runtimeClassName) || !(object.spec.runtimeClassName in [${list}]) || ${HAS_SANDBOX_ANNOTATION}` : "true";
  return onCreateOrUpdate("not-sandboxed-or-annotated", create, `(has(request.subResource) && request.subResource == 'ephemeralcontainers') || (${SANDBOX_ANNOTATIONS_CHANGED})`);
}
const AUDIT_SAFETY_NET = onCreateOrUpdate("sandbox-annotations", HAS_SANDBOX_ANNOTATION, SANDBOX_ANNOTATIONS_CHANGED);

const podRules = [{ operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" }];
/** The validating webhooks also see updates: a pod update or kubectl debug must not open what CREATE closed. */
const podRulesWithUpdates = [
  { operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"], scope: "Namespaced" },
  { operations: ["UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods/ephemeralcontainers"], scope: "Namespaced" },
];

function entry(name: string, o: WebhookOptions, path: string, failurePolicy: "Fail" | "Ignore", timeoutSeconds: number, extra: Record<string, unknown>) {
  return { name, admissionReviewVersions: ["v1"], sideEffects: "None", failurePolicy, timeoutSeconds, matchPolicy: "Equivalent", clientConfig: clientConfig(o, path), ...extra };
}

function metadata(o: WebhookOptions) {
  return {
    name: WEBHOOK_CONFIG_NAME,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    ...(o.certManagerCertificate ? { annotations: { "cert-manager.io/inject-ca-from": o.certManagerCertificate } } : {}),
  };
}

/**
 * The MutatingWebhookConfiguration (inject the class, record the decision, refuse and warn: one
 * call per pod) and the ValidatingWebhookConfiguration (the same checks on the final pod, called
 * only when that pod could have escaped them; SandboxConfig checks). Enforce namespaces fail
 * closed; every other namespace fails open.
 */
export function webhookConfigurations(o: WebhookOptions): [Record<string, unknown>, Record<string, unknown>] {
  const sel = namespaceSelectors(o);
  const mutating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: metadata(o),
    webhooks: [
      entry("enforce.pods.sandboxing.dev", o, podPath(PATHS.mutatePods, "enforce"), "Fail", TIMEOUTS.enforce, { namespaceSelector: { matchExpressions: sel.enforce }, rules: podRules, reinvocationPolicy: "IfNeeded" }),
      entry("audit.pods.sandboxing.dev", o, podPath(PATHS.mutatePods, "audit"), "Ignore", TIMEOUTS.ignore, { namespaceSelector: { matchExpressions: sel.audit }, rules: podRules, reinvocationPolicy: "Never" }),
    ],
  };
  const validating = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingWebhookConfiguration",
    metadata: metadata(o),
    webhooks: [
      entry("enforce.pods.validate.sandboxing.dev", o, podPath(PATHS.validatePods, "enforce"), "Fail", TIMEOUTS.enforce, {
        namespaceSelector: { matchExpressions: sel.enforce },
        rules: podRulesWithUpdates,
        matchConditions: enforceSafetyNet(o.sandboxClasses),
      }),
      entry("audit.pods.validate.sandboxing.dev", o, podPath(PATHS.validatePods, "audit"), "Ignore", TIMEOUTS.ignore, { namespaceSelector: { matchExpressions: sel.audit }, rules: podRulesWithUpdates, matchConditions: AUDIT_SAFETY_NET }),
      entry("off.pods.validate.sandboxing.dev", o, podPath(PATHS.validatePods, "off"), "Ignore", TIMEOUTS.ignore, { namespaceSelector: { matchExpressions: sel.off }, rules: podRulesWithUpdates, matchConditions: OFF_MATCH }),
      entry("sandboxconfigs.validate.sandboxing.dev", o, PATHS.validateConfig, "Ignore", TIMEOUTS.config, {
        rules: [{ operations: ["CREATE", "UPDATE"], apiGroups: ["sandboxing.dev"], apiVersions: ["v1alpha1"], resources: ["sandboxconfigs"], scope: "Cluster" }],
      }),
    ],
  };
  return [mutating, validating];
}

/** cert-manager mode: a self-signed Issuer and the serving Certificate whose Secret the webhook reads. */
export function certManagerObjects(o: { namespace: string; serviceName?: string }): Array<Record<string, unknown>> {
  const svc = o.serviceName ?? DEFAULT_SERVICE_NAME;
  const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };
  return [
    { apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: { name: `${svc}-selfsigned`, namespace: o.namespace, labels }, spec: { selfSigned: {} } },
    {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name: svc, namespace: o.namespace, labels },
      spec: {
        secretName: certManagerSecretName(svc),
        dnsNames: [`${svc}.${o.namespace}.svc`, `${svc}.${o.namespace}.svc.cluster.local`],
        issuerRef: { kind: "Issuer", name: `${svc}-selfsigned` },
        privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
        duration: "2160h",
        renewBefore: "720h",
      },
    },
  ];
}

export const certManagerSecretName = (serviceName: string) => `${serviceName}-tls`;
export const caSecretName = (serviceName: string) => `${serviceName}-ca`;
