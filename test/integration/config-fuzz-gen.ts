// Seeded SandboxConfig mutations for the input fuzz test: a rich valid spec, then 1-3 mutations of
// any field (hostile strings, numbers, nulls, wrong types, removals), each naming the path it changed.
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A valid spec touching every field the schema has. */
export function baseSpec(): Obj {
  return {
    nodeSelector: { matchLabels: { "fuzz.sandboxing.dev/pool": "a" }, matchExpressions: [{ key: "fuzz.sandboxing.dev/zone", operator: "In", values: ["z1", "z2"] }] },
    tolerations: [
      { key: "dedicated", operator: "Equal", value: "sandbox", effect: "NoSchedule" },
      { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
    ],
    runtimes: { allowed: ["gvisor", "kata-qemu"], preferred: ["kata-qemu", "gvisor"] },
    runtimeClassName: "sandboxed",
    variants: [
      { name: "kata-big", backend: "kata-qemu", vcpus: 4, memory: "4Gi", kernelParams: ["hugepages=16"], overhead: { memory: "400Mi", cpu: "300m" } },
      { name: "kata-gpu", backend: "kata-qemu", vfio: { plug: "hot-plug", port: "root-port", rootPorts: 1, nodeSelector: { "feature.node.kubernetes.io/pci-10de.present": "true" } } },
      { name: "gvisor-small", backend: "gvisor", overhead: { memory: "80Mi" } },
    ],
    overhead: { gvisor: { memory: "64Mi", cpu: "100m" }, "kata-qemu": { memory: "320Mi", cpu: "250m" } },
    rollout: { maxUnavailable: "50%", drain: false },
    uninstall: { whenPodsRun: "Wait" },
    podPolicy: { defaultMode: "off" },
    allowedSandboxAnnotations: ["io.katacontainers.config.hypervisor.default_vcpus", "dev.gvisor.flag.debug"],
    logLevel: "info",
    verification: { imagePullPolicy: "IfNotPresent", imagePullSecrets: ["pull-secret"] },
    installMethod: "DaemonSet",
  };
}

const long = (n: number, c = "a") => c.repeat(n);
/** Values core validation, label rules, quantity parsers and CEL have tripped on before. */
const STRINGS: Json[] = [
  "", " ", "a b", "a\tb", "a\u0000b", "a\u00a0b", "ünï", "UPPER", "-lead", "trail-", "a_b", "a.b", "a/b", "a/b/c", "/x", "x/",
  long(55, "r"), long(56, "r"), long(63), long(64), long(253), long(254), `${long(253, "p")}/${long(63, "n")}`, `${long(254, "p")}/n`,
  "legacy", "gvisor", "kata", "sandboxed", "kata-big", "Exists", "Equal", "NoExecute", "In", "DoesNotExist",
  "0", "1", "-1", "-64Mi", "1e400", "100Ei", "1Ei", "4Ti", "4097Gi", "256Mi", "255Mi", "64Gi", "65Gi", "250m", "0.5", "1.5Gi", "1e3", "+1", ".5", "1Mi ", "NaN",
  "0%", "1%", "25%", "100%", "101%", "%", "1.5%", "io.katacontainers.config.hypervisor.path", "dev.gvisor.flag.x", "registry.example/img@sha256:" + long(64, "f"), "quiet\u2003splash",
];
const NUMBERS: Json[] = [0, 1, -1, 2, 55, 63, 256, 257, 2147483647, 2 ** 40, -(2 ** 31), 1.5];
const OTHERS: Json[] = [null, true, false, {}, [], { a: null }, [null], ["x"], { "": "x" }];

/** Every place a mutation may land: a path from the spec root, `*` = an index chosen per case, `|key` = a map key. */
const PATHS = [
  "nodeSelector", "nodeSelector.matchLabels", "nodeSelector.matchLabels|fuzz.sandboxing.dev/pool", "nodeSelector.matchLabels|<new>",
  "nodeSelector.matchExpressions", "nodeSelector.matchExpressions.0", "nodeSelector.matchExpressions.0.key", "nodeSelector.matchExpressions.0.operator", "nodeSelector.matchExpressions.0.values", "nodeSelector.matchExpressions.0.values.0",
  "tolerations", "tolerations.*", "tolerations.*.key", "tolerations.*.operator", "tolerations.*.value", "tolerations.*.effect", "tolerations.*.tolerationSeconds",
  "runtimes", "runtimes.allowed", "runtimes.allowed.*", "runtimes.preferred", "runtimes.preferred.*",
  "runtimeClassName",
  "variants", "variants.*", "variants.*.name", "variants.*.backend", "variants.*.vcpus", "variants.*.memory", "variants.*.kernelParams", "variants.*.kernelParams.0",
  "variants.*.overhead", "variants.*.overhead.memory", "variants.*.overhead.cpu",
  "variants.1.vfio", "variants.1.vfio.plug", "variants.1.vfio.port", "variants.1.vfio.rootPorts", "variants.1.vfio.nodeSelector", "variants.1.vfio.nodeSelector|<new>", "variants.1.vfio.nodeSelector|feature.node.kubernetes.io/pci-10de.present",
  "overhead", "overhead.gvisor", "overhead.gvisor.memory", "overhead.gvisor.cpu", "overhead.kata-qemu.memory", "overhead.kata-qemu.cpu", "overhead.kata-fc",
  "rollout", "rollout.maxUnavailable", "rollout.drain", "uninstall.whenPodsRun", "podPolicy.defaultMode",
  "allowedSandboxAnnotations", "allowedSandboxAnnotations.*", "logLevel",
  "verification", "verification.image", "verification.imagePullPolicy", "verification.imagePullSecrets", "verification.imagePullSecrets.0", "installMethod",
];
const NEW_KEYS = ["bad key", "ok/key", long(64), "node-role.kubernetes.io/worker", `${long(254, "p")}/n`, "a/b/c", "Ünï"];

export interface Mutation {
  /** Field path as the apiserver writes it, e.g. spec.variants[1].memory. */
  field: string;
  value: Json | "<removed>";
}

export interface FuzzCase {
  index: number;
  spec: Obj;
  mutations: Mutation[];
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

/** Values of the right shape for a field (by its last path segment): mutations that may well be accepted. */
const PLAUSIBLE: Record<string, Json[]> = {
  memory: ["256Mi", "512Mi", "2Gi", "1Ti", "4Ti", "0", "64Gi", "100M", "1e9"],
  cpu: ["0", "1", "500m", "64", "0.25"],
  key: ["gpu", "example.com/dedicated", "", "node.kubernetes.io/not-ready", "a.b_c-d"],
  operator: ["Exists", "Equal", "In", "NotIn", "DoesNotExist"],
  value: ["", "x", "true", "a.b-c_d"],
  effect: ["NoSchedule", "PreferNoSchedule", "NoExecute"],
  tolerationSeconds: [0, 60, 3600, -1],
  name: ["v1", "fast", "kata-x", "r".repeat(55), "legacy"],
  backend: ["gvisor", "kata-qemu", "kata-clh", "kata-fc"],
  vcpus: [1, 2, 8, 256],
  maxUnavailable: [1, 3, "10%", "100%", 1000],
  runtimeClassName: ["sandboxed", "isolated", "r".repeat(55)],
  allowed: [["gvisor"], ["kata-qemu", "gvisor"], ["kata-fc", "gvisor", "kata-qemu"]],
  preferred: [["gvisor"], ["gvisor", "kata-qemu"], []],
  kernelParams: [["quiet"], ["console=ttyS0", "init=/sbin/init"], []],
  rootPorts: [1, 2, 16],
  plug: ["cold-plug", "hot-plug"],
  port: ["root-port", "switch-port", "bridge-port"],
  drain: [true, false],
  whenPodsRun: ["Wait", "Proceed"],
  defaultMode: ["enforce", "audit", "off"],
  logLevel: ["debug", "warn", "error"],
  image: ["registry.example/verify:1", "registry.example:5000/a/b@sha256:" + long(64, "e")],
  imagePullPolicy: ["Always", "Never"],
  installMethod: ["Auto", "DaemonSet", "MachineConfig"],
  matchLabels: [{}, { "fuzz.sandboxing.dev/pool": "b" }, { "fuzz.sandboxing.dev/pool": "" }],
  nodeSelector: [{}, { matchLabels: { "fuzz.sandboxing.dev/zone": "z1" } }],
  tolerations: [[], [{ operator: "Exists" }], [{ key: "k", effect: "NoExecute", tolerationSeconds: 5 }]],
  overhead: [{}, { gvisor: { memory: "1Gi" } }],
  allowedSandboxAnnotations: [[], ["io.katacontainers.config.hypervisor.default_memory"]],
};

function value(r: () => number, field: string): Json | "<removed>" {
  const plausible = PLAUSIBLE[field];
  if (plausible && r() < 0.5) return clone(pick(r, plausible));
  const roll = r();
  if (roll < 0.1) return "<removed>";
  if (roll < 0.7) return pick(r, STRINGS);
  if (roll < 0.85) return pick(r, NUMBERS);
  return clone(pick(r, OTHERS));
}

function segments(path: string, r: () => number): string[] {
  const [dotted, key] = path.split("|");
  const out = dotted!.split(".").map((p) => (p === "*" ? String(Math.floor(r() * 3)) : p));
  if (key !== undefined) out.push(key === "<new>" ? pick(r, NEW_KEYS) : key);
  return out;
}

const fieldName = (segs: string[]) => "spec" + segs.map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`)).join("");

function set(spec: Obj, segs: string[], v: Json | "<removed>"): boolean {
  let cur: Json = spec;
  for (const s of segs.slice(0, -1)) {
    if (cur === null || typeof cur !== "object") return false;
    const next: Json | undefined = (cur as Obj)[s];
    if (next === undefined || next === null || typeof next !== "object") return false;
    cur = next;
  }
  if (cur === null || typeof cur !== "object") return false;
  const last = segs[segs.length - 1]!;
  if (Array.isArray(cur)) {
    const i = Number(last);
    if (!(i in cur)) return false;
    if (v === "<removed>") cur.splice(i, 1);
    else cur[i] = v;
  } else if (v === "<removed>") delete (cur as Obj)[last];
  else (cur as Obj)[last] = v;
  return true;
}

/** The cases for one seed; case i is the same on every run with that seed. */
export function fuzzCases(seed: number, count: number): FuzzCase[] {
  const r = rng(seed);
  const out: FuzzCase[] = [];
  while (out.length < count) {
    const spec = baseSpec();
    const mutations: Mutation[] = [];
    const roll = r();
    const n = roll < 0.6 ? 1 : roll < 0.9 ? 2 : 3;
    for (let k = 0; k < n; k++) {
      const segs = segments(pick(r, PATHS), r);
      const v = value(r, segs[segs.length - 1]!);
      if (set(spec, segs, v)) mutations.push({ field: fieldName(segs), value: v });
    }
    if (mutations.length) out.push({ index: out.length, spec, mutations });
  }
  return out;
}

/**
 * A refusal names the mutated field when it names that field, a parent or child, or a field of the
 * same top-level spec field (CEL rules sit on objects: a variant's vfio is checked with its backend,
 * preferred against allowed), or one a rule links across (variants against runtimes.allowed and
 * runtimeClassName).
 */
export function related(errorField: string, mutated: string): boolean {
  const top = (f: string) => f.replace(/\[(\d+)\]/g, ".$1").split(".")[1];
  const [a, b] = [top(errorField), top(mutated)];
  if (a === undefined) return false;
  const linked = [["runtimes", "variants"], ["runtimeClassName", "variants"]];
  return a === b || linked.some(([x, y]) => (a === x && b === y) || (a === y && b === x));
}

/** Field paths a refusal message names (`spec.x[0].y: ...`), as the apiserver and our webhook write them. */
export function fieldsIn(message: string): string[] {
  return [...message.matchAll(/\b(spec(?:\.[A-Za-z0-9-]+|\[\d+\])*)(?:\.[^:]*)?: /g)].map((m) => m[1]!);
}
