// Renders one Kata Containers configuration file per Kata handler (hypervisor, guest sizing,
// kernel params, annotation allowlist). Pure; the agent writes the files it returns.
import type { DesiredHandler } from "../../api/sandboxnode.js";
import { isKata, kataConfigPath, tomlArray, tomlString, type Layout } from "./layout.js";

export interface KataRenderOptions {
  layout: Layout;
  /** Node CPU architecture as Node reports it (x64, arm64). */
  arch?: string;
  /** Pod annotation keys the admin allowed; only io.katacontainers.config.hypervisor.* ones matter here. */
  allowedAnnotations?: readonly string[];
}

export interface RenderedFile {
  path: string;
  content: string;
}

/** Defaults Kata itself ships (1 vCPU, 2048 MiB); variants override them. */
export const DEFAULT_VCPUS = 1;
export const DEFAULT_MEMORY_MIB = 2048;
/** Where the kubelet serves its pod-resources API: Kata's cold-plug asks it which devices the pod was given. */
export const KUBELET_POD_RESOURCES_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock";
const HYPERVISOR_ANNOTATION = "io.katacontainers.config.hypervisor.";

interface Hypervisor {
  section: string;
  lines: (l: Layout, arch: string) => string[];
}

const share = (l: Layout) => `${l.kataDir}/share/kata-containers`;
const virtiofs = (l: Layout) => [
  `shared_fs = "virtio-fs"`,
  `virtio_fs_daemon = ${tomlString(`${l.kataDir}/libexec/virtiofsd`)}`,
  `valid_virtio_fs_daemon_paths = ${tomlArray([`${l.kataDir}/libexec/virtiofsd`])}`,
  `virtio_fs_cache = "auto"`,
];

const HYPERVISORS: Record<string, Hypervisor> = {
  "kata-qemu": {
    section: "qemu",
    lines: (l, arch) => {
      const bin = arch === "arm64" ? "qemu-system-aarch64" : "qemu-system-x86_64";
      return [
        `path = ${tomlString(`${l.kataDir}/bin/${bin}`)}`,
        `valid_hypervisor_paths = ${tomlArray([`${l.kataDir}/bin/${bin}`])}`,
        `kernel = ${tomlString(`${share(l)}/vmlinux.container`)}`,
        `image = ${tomlString(`${share(l)}/kata-containers.img`)}`,
        `machine_type = ${tomlString(arch === "arm64" ? "virt" : "q35")}`,
        `block_device_driver = "virtio-scsi"`,
        ...virtiofs(l),
      ];
    },
  },
  "kata-clh": {
    section: "clh",
    lines: (l) => [
      `path = ${tomlString(`${l.kataDir}/bin/cloud-hypervisor`)}`,
      `valid_hypervisor_paths = ${tomlArray([`${l.kataDir}/bin/cloud-hypervisor`])}`,
      `kernel = ${tomlString(`${share(l)}/vmlinux.container`)}`,
      `image = ${tomlString(`${share(l)}/kata-containers.img`)}`,
      `block_device_driver = "virtio-blk"`,
      ...virtiofs(l),
    ],
  },
  "kata-fc": {
    // Firecracker has no virtio-fs: the rootfs goes in as a block device, so it needs a
    // block-capable snapshotter (devmapper) on the containerd side.
    section: "firecracker",
    lines: (l) => [
      `path = ${tomlString(`${l.kataDir}/bin/firecracker`)}`,
      `valid_hypervisor_paths = ${tomlArray([`${l.kataDir}/bin/firecracker`])}`,
      `jailer_path = ${tomlString(`${l.kataDir}/bin/jailer`)}`,
      `valid_jailer_paths = ${tomlArray([`${l.kataDir}/bin/jailer`])}`,
      `kernel = ${tomlString(`${share(l)}/vmlinux.container`)}`,
      `image = ${tomlString(`${share(l)}/kata-containers.img`)}`,
      `block_device_driver = "virtio-mmio"`,
      `shared_fs = "none"`,
    ],
  },
};

/**
 * Kata's `enable_annotations` entries are Go regular expressions that Kata matches, unanchored, against
 * the annotation key with "io.katacontainers.config.hypervisor." cut off (pkg/oci checkAnnotationNameIsValid,
 * regexp.MatchString): a bare "kernel_params" would also let "kernel_params_x" through, and "path" would
 * let "jailer_path" through (GHSA-rr59-xxvx-96qr). So each allowed option becomes `^name$`, its regex
 * metacharacters escaped; an empty list means pods cannot reconfigure the VM.
 */
export function kataEnabledAnnotations(allowed: readonly string[] = []): string[] {
  const names = allowed.filter((k) => k.startsWith(HYPERVISOR_ANNOTATION)).map((k) => k.slice(HYPERVISOR_ANNOTATION.length));
  return [...new Set(names)].sort().map((n) => `^${n.replace(/[\\.*+?^$()[\]{}|]/g, "\\$&")}$`);
}

/**
 * VFIO passthrough in Kata's own option names: a variant cold-plugs (cold_plug_vfio) or hot-plugs
 * (hot_plug_vfio, with pcie_root_port ports made up front) onto a PCIe port; never both.
 */
function vfioLines(h: DesiredHandler): string[] {
  const v = h.kata?.vfio;
  if (!v) return [];
  return [
    `hot_plug_vfio = ${tomlString(v.plug === "hot-plug" ? v.port : "no-port")}`,
    `cold_plug_vfio = ${tomlString(v.plug === "cold-plug" ? v.port : "no-port")}`,
    ...(v.rootPorts ? [`pcie_root_port = ${v.rootPorts}`] : []),
  ];
}

export function renderKataConfig(h: DesiredHandler, opts: KataRenderOptions): string {
  const hv = HYPERVISORS[h.backend];
  if (!hv) throw new Error(`handler ${h.name}: backend ${h.backend} is not a Kata backend`);
  const arch = opts.arch === "arm64" ? "arm64" : "amd64";
  const vcpus = h.kata?.vcpus ?? DEFAULT_VCPUS;
  const memory = h.kata?.memoryMiB ?? DEFAULT_MEMORY_MIB;
  const params = (h.kata?.kernelParams ?? []).join(" ");
  const out = [
    `# Kata Containers configuration for the CRI handler "${h.name}" (${h.backend}).`,
    `# Written by sandbox-operator; replaced on every apply and removed on uninstall. Do not edit.`,
    ``,
    `[hypervisor.${hv.section}]`,
    ...hv.lines(opts.layout, arch),
    `default_vcpus = ${vcpus}`,
    // Let the pod's CPU limit grow the VM, but never beyond the host.
    `default_maxvcpus = 0`,
    `default_memory = ${memory}`,
    `kernel_params = ${tomlString(params)}`,
    `enable_annotations = ${tomlArray(kataEnabledAnnotations(opts.allowedAnnotations))}`,
    `disable_image_nvdimm = false`,
    ...vfioLines(h),
    ``,
    `[agent.kata]`,
    `dial_timeout = 45`,
    ``,
    `[runtime]`,
    ...(h.kata?.vfio?.plug === "cold-plug" ? [`pod_resource_api_sock = ${tomlString(KUBELET_POD_RESOURCES_SOCKET)}`] : []),
    `internetworking_model = "tcfilter"`,
    `disable_guest_seccomp = true`,
    `sandbox_cgroup_only = false`,
    // Firecracker cannot hot-plug CPUs or memory: size the VM from the pod spec up front.
    `static_sandbox_resource_mgmt = ${h.backend === "kata-fc"}`,
    `enable_pprof = false`,
    ``,
  ];
  return out.join("\n");
}

/** Every Kata configuration file the handlers need, sorted by path. */
export function renderKataConfigs(handlers: readonly DesiredHandler[], opts: KataRenderOptions): RenderedFile[] {
  return handlers
    .filter((h) => isKata(h.backend))
    .map((h) => ({ path: kataConfigPath(opts.layout, h.name), content: renderKataConfig(h, opts) }))
    .sort((a, b) => a.path.localeCompare(b.path));
}
