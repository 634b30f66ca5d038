// One table of pod annotations for both allowlists: the admission webhook's (exact keys) and the
// node's (Kata's enable_annotations as we render it), fed from the same SandboxConfig list.

const hv = (name: string) => `io.katacontainers.config.hypervisor.${name}`;

/** The admin's spec.allowedSandboxAnnotations for the table: the one source both allowlists are built from. */
export const ALLOWED = [hv("kernel_params"), hv("default_vcpus"), hv("default_memory")] as const;

export interface AnnotationCase {
  key: string;
  value: string;
  /** Whether a pod carrying it may run: the webhook admits it and Kata's OCI code takes it. */
  allowed: boolean;
  /** Why the case is in the table. */
  why: string;
}

const refused = (name: string, value: string, why: string): AnnotationCase => ({ key: hv(name), value, allowed: false, why });

export const CASES: readonly AnnotationCase[] = [
  { key: hv("kernel_params"), value: "quiet", allowed: true, why: "allowed" },
  { key: hv("default_vcpus"), value: "1", allowed: true, why: "allowed" },
  { key: hv("default_memory"), value: "1024", allowed: true, why: "allowed" },
  // Suffixes: an unanchored "kernel_params" matches inside each of these.
  refused("kernel_params_x", "quiet", "suffix of an allowed name"),
  refused("default_vcpus2", "1", "suffix of an allowed name"),
  refused("default_memory_slots", "8", "a real option that starts with an allowed name"),
  // Prefixes and infixes.
  refused("xkernel_params", "quiet", "prefix before an allowed name"),
  refused("kernel_param", "quiet", "an allowed name cut short"),
  refused("default_", "1", "an allowed name cut short"),
  refused("guest_kernel_params_extra", "quiet", "an allowed name inside another"),
  // Neighbours: real Kata options next to the allowed ones.
  refused("default_maxvcpus", "8", "neighbour option (CPU)"),
  refused("default_maxmemory", "8192", "neighbour option (memory)"),
  refused("kernel", "/tmp/evil", "neighbour option naming a host file"),
  refused("path", "/tmp/evil", "hypervisor binary (GHSA-rr59-xxvx-96qr)"),
  refused("jailer_path", "/tmp/evil", "jailer binary: contains 'path'"),
  refused("virtio_fs_daemon", "/tmp/evil", "host program"),
  refused("enable_iommu", "true", "neighbour option"),
  refused("cold_plug_vfio", "root-port", "device passthrough topology"),
  // Case and separators: Go regexps are case-sensitive; '.' must not match any character.
  refused("KERNEL_PARAMS", "quiet", "other case"),
];

/**
 * Keys outside io.katacontainers.config.hypervisor.*: Kata's enable_annotations does not govern them
 * (pkg/oci checkAnnotationNameIsValid returns true for other prefixes), so the webhook and the CRI
 * runtime's pass-list (containerd pod_annotations, CRI-O allowed_annotations: exact allowed keys) are the gates.
 */
export const OTHER_KATA_KEYS: readonly AnnotationCase[] = [
  { key: "io.katacontainers.config.runtime.disable_guest_seccomp", value: "true", allowed: false, why: "runtime option" },
  { key: "io.katacontainers.config.agent.enable_tracing", value: "true", allowed: false, why: "agent option" },
];
