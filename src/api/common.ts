// Schema pieces shared by every sandboxing.dev type: Kubernetes shapes (LabelSelector,
// Toleration, Condition, quantities) written once, so types, CRDs and validation agree.
import { Type, type Static, type TSchema, type SchemaOptions } from "@sinclair/typebox";

export const GROUP = "sandboxing.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** The label the controller puts on each selected Node (DaemonSet path); the agent DaemonSet runs only there. */
export const AGENT_NODE_LABEL = "sandboxing.dev/agent";
export const AGENT_NODE_LABEL_VALUE = "true";

/** The sandbox backends the operator knows how to install and verify. */
export const BACKENDS = ["kata-qemu", "kata-clh", "kata-fc", "gvisor"] as const;
export type Backend = (typeof BACKENDS)[number];

/** A string restricted to a fixed set, written as a plain JSON-schema enum (structural for CRDs). */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

/** A CEL rule the apiserver evaluates; `fieldPath` points the error at the offending field. */
export interface CelRule {
  rule: string;
  message: string;
  /** A CEL string expression the apiserver shows instead of `message`: used to echo the refused value. */
  messageExpression?: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

export function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

export const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/** A DNS-1123 subdomain (names of Secrets and most objects). */
export const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/**
 * An image reference: [registry[:port]/]path[:tag][@sha256:<64 hex>], lower-case path components
 * as the distribution spec allows them.
 */
export const IMAGE_REFERENCE = "^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$";

/** How a node's agent proves handlers: the image its verification Pods run, and how to pull it. */
export const VerificationImage = Type.Object({
  image: Type.Optional(
    Type.String({
      pattern: IMAGE_REFERENCE,
      maxLength: 512,
      description: "Image of the verification container; it needs sh, uname and dmesg. Default: the agent's own image, pinned by digest (already on every node the agent runs on). Pin yours by digest (name@sha256:...).",
    }),
  ),
  imagePullPolicy: Type.Optional(StringEnum(["Always", "IfNotPresent", "Never"] as const, { description: "Pull policy of the verification container (default IfNotPresent)." })),
  imagePullSecrets: Type.Optional(
    Type.Array(Type.String({ pattern: DNS_SUBDOMAIN, maxLength: 253 }), {
      maxItems: 8,
      "x-kubernetes-list-type": "set",
      description: "Names of Secrets (type kubernetes.io/dockerconfigjson) in the operator's namespace the verification Pods pull with.",
    }),
  ),
}, { description: "How each node's agent proves its handlers: the image of its verification Pods and how the node pulls it." });
export type VerificationImage = Static<typeof VerificationImage>;

/** An image reference pinned by digest (repository@sha256:<64 hex>): a payload never moves under a tag. */
export const PINNED_IMAGE_REFERENCE = "^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[a-f0-9]{64}$";

/** A runtime payload (docs/payloads.md): the OCI image whose files the agent installs for one backend. */
export const PayloadImage = Type.Object({
  image: Type.String({
    pattern: PINNED_IMAGE_REFERENCE,
    maxLength: 512,
    description: "Payload image, pinned by digest (name@sha256:...). The node pulls it through its CRI runtime (its mirrors and credentials apply) and the agent installs its files under /opt/sandbox-operator/<backend>/<digest>/.",
  }),
  imagePullPolicy: Type.Optional(StringEnum(["IfNotPresent", "Never"] as const, { description: "IfNotPresent (default): pull unless the node has it. Never: the image must already be on the node (pre-loaded)." })),
});
export type PayloadImage = Static<typeof PayloadImage>;

/** Per backend, the payload to install; a backend left out uses the agent's default (gVisor: the payload image built with the operator; Kata: none). */
export const Payloads = Type.Object(
  {
    gvisor: Type.Optional(PayloadImage),
    kata: Type.Optional(
      Type.Object(PayloadImage.properties, {
        description: "Kata Containers payload: an image whose /payload/ holds kata-deploy's /opt/kata tree (bin/containerd-shim-kata-v2, the hypervisors, share/kata-containers/ kernel and image). Installed on every selected node while a Kata runtime is allowed; one payload serves kata-qemu, kata-clh and kata-fc. No default.",
      }),
    ),
  },
  { description: "Runtime payloads the agent installs, per backend. Default: the gVisor payload image built and pinned with the operator; no Kata payload (Kata is then used where it is installed under /opt/kata)." },
);
export type Payloads = Static<typeof Payloads>;

export const DnsLabel = (options: SchemaOptions = {}) =>
  Type.String({ pattern: DNS_LABEL, minLength: 1, maxLength: 63, ...options });

/** A Kubernetes resource quantity ("512Mi", "2Gi", "250m"), checked by the apiserver's own parser. */
export const Quantity = (options: SchemaOptions = {}) =>
  Type.String({
    maxLength: 32,
    ...options,
    ...cel({ rule: "isQuantity(self)", message: "must be a Kubernetes quantity such as 512Mi, 2Gi or 250m" }),
  });

/** CEL for a string literal inside a messageExpression: the value quoted, so "" and spaces show. */
const quoted = (expr: string) => `'"' + ${expr} + '"'`;

/**
 * A quantity within [min, max], e.g. guest memory 256Mi..4Ti: negative, zero or absurd sizes
 * (-64Mi, 1e400, 100Ei) pass isQuantity() but break the RuntimeClass or the guest VM.
 */
export const BoundedQuantity = (min: string, max: string, example: string, options: SchemaOptions = {}) =>
  Type.String({
    maxLength: 32,
    ...options,
    ...cel({
      rule: `isQuantity(self) && quantity(self).compareTo(quantity('${min}')) >= 0 && quantity(self).compareTo(quantity('${max}')) <= 0`,
      message: `must be a Kubernetes quantity from ${min} to ${max}, such as ${example}`,
      messageExpression: `${quoted("self")} + (isQuantity(self) ? ' is out of range' : ' is not a Kubernetes quantity') + ': use a quantity from ${min} to ${max}, such as ${example}'`,
    }),
  });

/** A label key: optional DNS-subdomain prefix (<= 253) and a name part of 1-63 characters. */
export const LABEL_KEY = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
export const LABEL_VALUE = "^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$";
const LABEL_KEY_HELP = "a label key is an optional DNS subdomain prefix (at most 253 characters) and a slash, then a name of 1-63 letters, digits, dashes, underscores or dots that starts and ends with a letter or digit, such as node-role.kubernetes.io/worker";

/** CEL: `expr` is a valid label key (the regex, and a prefix of at most 253 characters). */
export const celLabelKey = (expr: string) => `${expr}.matches('${LABEL_KEY.replace(/\\/g, "\\\\")}') && (!${expr}.contains('/') || ${expr}.indexOf('/') <= 253)`;

/** A map whose keys must be label keys and values strings; refusals show the offending key. */
function labelMapRules(what: string): CelRule[] {
  return [
    {
      rule: `self.all(k, ${celLabelKey("k")})`,
      message: `every ${what} key must be a valid label key: ${LABEL_KEY_HELP}`,
      messageExpression: `'key ' + ${quoted(`self.filter(k, !(${celLabelKey("k")}))[0]`)} + ' is not a valid label key: ${LABEL_KEY_HELP}'`,
    },
    {
      rule: "self.all(k, type(self[k]) != null_type)",
      message: `every ${what} value must be a string; use "" for an empty label value`,
      messageExpression: `'key ' + ${quoted("self.filter(k, type(self[k]) == null_type)[0]")} + ' has value null, which would drop it and select more nodes; give it a string value ("" for an empty label value) or remove the key'`,
    },
  ];
}

/**
 * A map of Node labels (label key -> label value), e.g. matchLabels or a RuntimeClass nodeSelector.
 * Values are nullable so that `key: null` reaches the rule that refuses it: the apiserver would
 * otherwise prune it before validation, and `{key: null}` would be stored as `{}` (every node).
 */
export const LabelMap = (options: SchemaOptions = {}, what = "label") =>
  Type.Record(Type.String({ maxLength: 317 }), Type.String({ pattern: LABEL_VALUE, maxLength: 63, nullable: true }), { ...options, "x-kubernetes-validations": labelMapRules(what) });

export const LabelSelectorRequirement = Type.Object(
  {
    key: Type.String({
      pattern: LABEL_KEY,
      maxLength: 317,
      description: "The label key the selector applies to.",
      ...cel({ rule: celLabelKey("self"), message: `must be a valid label key: ${LABEL_KEY_HELP}`, messageExpression: `${quoted("self")} + ' is not a valid label key: ${LABEL_KEY_HELP}'` }),
    }),
    operator: StringEnum(["In", "NotIn", "Exists", "DoesNotExist"] as const),
    values: Type.Optional(Type.Array(Type.String({ pattern: LABEL_VALUE, maxLength: 63 }), { maxItems: 64 })),
  },
  cel(
    {
      rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
      message: "values must be non-empty for operators In and NotIn, and empty for Exists and DoesNotExist",
    },
  ),
);

export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      LabelMap({ maxProperties: 64 }, "matchLabels"),
    ),
    matchExpressions: Type.Optional(Type.Array(LabelSelectorRequirement, { maxItems: 32 })),
  },
  { description: "A label selector over Nodes; {} selects every node." },
);
export type LabelSelector = Static<typeof LabelSelector>;

/** core/v1 Toleration, with the rules core validation applies to Pods and RuntimeClasses (we copy it into both). */
export const Toleration = Type.Object(
  {
    key: Type.Optional(Type.String({ maxLength: 317 })),
    operator: Type.Optional(StringEnum(["Exists", "Equal"] as const)),
    value: Type.Optional(Type.String({ pattern: LABEL_VALUE, maxLength: 63 })),
    effect: Type.Optional(StringEnum(["NoSchedule", "PreferNoSchedule", "NoExecute"] as const)),
    tolerationSeconds: Type.Optional(Type.Integer()),
  },
  cel(
    {
      rule: `!has(self.key) || self.key == '' || (${celLabelKey("self.key")})`,
      message: `key must be a valid label key: ${LABEL_KEY_HELP}`,
      messageExpression: `'key ' + ${quoted("self.key")} + ' is not a valid label key: ${LABEL_KEY_HELP}'`,
      fieldPath: ".key",
    },
    {
      rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
      message: "an empty key tolerates every taint only with operator: Exists; set a key or operator: Exists",
      fieldPath: ".operator",
    },
    {
      rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: "operator Exists matches any value; remove value or use operator: Equal",
      messageExpression: `'value ' + ${quoted("self.value")} + ' must be empty with operator: Exists (it matches any value); remove value or use operator: Equal'`,
      fieldPath: ".value",
    },
    {
      rule: "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
      message: "tolerationSeconds applies only to effect NoExecute; remove it or set effect: NoExecute",
      messageExpression: `'tolerationSeconds applies only to effect NoExecute, not ' + (has(self.effect) ? ${quoted("self.effect")} : 'an unset effect') + '; remove it or set effect: NoExecute'`,
      fieldPath: ".tolerationSeconds",
    },
  ),
);
export type Toleration = Static<typeof Toleration>;

/** metav1.Condition, as the apiserver defines it. */
export const Condition = Type.Object({
  type: Type.String({ maxLength: 316, pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$" }),
  status: StringEnum(["True", "False", "Unknown"] as const),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  lastTransitionTime: Type.String({ format: "date-time" }),
  reason: Type.String({ minLength: 1, maxLength: 1024, pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$" }),
  message: Type.String({ maxLength: 32768 }),
});
export type Condition = Static<typeof Condition>;

export const Conditions = Type.Array(Condition, {
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
  maxItems: 16,
});

export const ResourceOverhead = Type.Object(
  {
    cpu: Type.Optional(BoundedQuantity("0", "64", "250m", { description: "CPU the sandbox itself uses per pod, e.g. 250m (0 to 64)." })),
    memory: Type.Optional(BoundedQuantity("0", "64Gi", "320Mi", { description: "Memory the sandbox itself uses per pod, e.g. 320Mi (0 to 64Gi)." })),
  },
  { description: "Per-pod overhead charged to pods of this RuntimeClass (RuntimeClass overhead.podFixed)." },
);
export type ResourceOverhead = Static<typeof ResourceOverhead>;

/** Kubernetes object metadata as far as our schemas care; the apiserver owns the rest. */
export const ObjectMeta = Type.Object({}, { additionalProperties: true });

export type Schema = TSchema;
