// SandboxConfig checks the CRD schema and CEL cannot make (ADR 0002): RuntimeClass names held by
// someone else, a general class named like a backend class, unsafe or malformed allowed annotations.
import { BACKEND_CLASS, DEFAULT_RUNTIMECLASS, type SandboxConfigSpec } from "../api/index.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, type RuntimeClassInfo } from "./policy.js";

export interface FieldProblem {
  field: string;
  message: string;
}

export interface ConfigReview {
  errors: FieldProblem[];
  warnings: string[];
}

/**
 * Kata annotations whose value names a host file or program: allowing one lets any pod author
 * make the Kata runtime execute or open arbitrary host paths (CVE-2020-27151, GHSA-rr59-xxvx-96qr).
 */
const HOST_PATH_KEY = /^io\.katacontainers\.config\.(hypervisor\.(path|ctlpath|jailer_path|kernel|image|initrd|firmware|firmware_volume|virtio_fs_daemon|entropy_source|file_mem_backend|vhost_user_store_path|.*_paths?)|.*_paths?|runtime\.sandbox_bind_mounts)$/;
const ANNOTATION_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function annotationKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const [prefix, name] = slash < 0 ? ["", key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix.length > 253) return "its prefix is longer than 253 characters";
  if (name.length > 63 || !ANNOTATION_NAME.test(name)) return "its name part (after any '/') must be 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric; the apiserver would refuse it on every pod";
  if (HOST_PATH_KEY.test(key)) return "its value names a host file or program, so allowing it lets any pod author make the Kata runtime run or open arbitrary host paths (CVE-2020-27151); configure that path in the RuntimeClass variant instead";
  return undefined;
}

/** Checks one SandboxConfig spec against the RuntimeClasses that exist. */
export function reviewSandboxConfig(spec: SandboxConfigSpec, runtimeClasses: ReadonlyMap<string, RuntimeClassInfo>): ConfigReview {
  const errors: FieldProblem[] = [];
  const warnings: string[] = [];
  const foreign = (name: string) => runtimeClasses.get(name)?.managed === false;
  const held = (name: string) =>
    `RuntimeClass ${name} already exists and is not managed by sandbox-operator (label ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}); choose another name, or delete or relabel that RuntimeClass first`;

  const general = spec.runtimeClassName ?? DEFAULT_RUNTIMECLASS;
  const backendClasses = Object.values(BACKEND_CLASS);
  if (backendClasses.includes(general)) {
    errors.push({ field: "spec.runtimeClassName", message: `${general} is the name of a backend RuntimeClass (${backendClasses.join(", ")}); the general class needs a name of its own such as ${DEFAULT_RUNTIMECLASS}` });
  } else if (foreign(general)) {
    errors.push({ field: "spec.runtimeClassName", message: held(general) });
  }
  spec.runtimes.allowed.forEach((backend, i) => {
    const name = BACKEND_CLASS[backend];
    if (foreign(name)) errors.push({ field: `spec.runtimes.allowed[${i}]`, message: `backend ${backend} publishes RuntimeClass ${name}, but ${held(name)}` });
  });
  (spec.variants ?? []).forEach((v, i) => {
    if (foreign(v.name)) errors.push({ field: `spec.variants[${i}].name`, message: held(v.name) });
  });
  (spec.allowedSandboxAnnotations ?? []).forEach((key, i) => {
    const problem = annotationKeyProblem(key);
    if (problem) errors.push({ field: `spec.allowedSandboxAnnotations[${i}]`, message: `${key} cannot be allowed: ${problem}` });
    else if (key.startsWith("dev.gvisor.flag.")) warnings.push(`spec.allowedSandboxAnnotations[${i}]: ${key} overrides a runsc flag; runsc honours it only when started with --allow-flag-override, and it can weaken the sandbox`);
  });
  return { errors, warnings };
}

/** One message for an AdmissionReview refusal; every problem names its field. */
export function configRefusal(name: string, review: ConfigReview): string {
  return `SandboxConfig ${name} is invalid: ${review.errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`;
}
