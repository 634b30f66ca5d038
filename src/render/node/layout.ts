// Where the agent's files and the sandbox runtimes' binaries live on a host, as the CRI runtime
// sees them. Pure: the shell maps these paths under --host-root before touching them.

/** Our own install directory on the host: binaries we ship, runtime configs we render. */
export const INSTALL_DIR = "/opt/sandbox-operator";
/** kata-deploy's layout, which distro packages of Kata mirror under /usr. */
export const KATA_DIR = "/opt/kata";

export interface Layout {
  /** Directory holding the files the agent owns (binaries, runsc.toml, Kata configs). */
  installDir: string;
  /** Kata Containers' install prefix (bin/, share/kata-containers/, libexec/). */
  kataDir: string;
  /** runsc binary the gVisor shim runs. */
  runsc: string;
  /** containerd-shim-runsc-v1. */
  gvisorShim: string;
  /** containerd-shim-kata-v2 (containerd) — CRI-O runs the same binary as a "vm" runtime. */
  kataShim: string;
  /** Options written into runsc.toml's [runsc_config] (e.g. network = "none" where netstack cannot run). */
  runscFlags: Record<string, string>;
}

export function defaultLayout(overrides: Partial<Layout> = {}): Layout {
  const installDir = overrides.installDir ?? INSTALL_DIR;
  const kataDir = overrides.kataDir ?? KATA_DIR;
  return {
    installDir,
    kataDir,
    runsc: `${installDir}/bin/runsc`,
    gvisorShim: `${installDir}/bin/containerd-shim-runsc-v1`,
    kataShim: `${kataDir}/bin/containerd-shim-kata-v2`,
    runscFlags: {},
    ...overrides,
  };
}

/** Kata configuration file rendered for one handler. */
export const kataConfigPath = (layout: Layout, handler: string) => `${layout.installDir}/etc/kata/configuration-${handler}.toml`;
/** The gVisor shim's configuration (binary path, runsc flags); one file serves every gVisor handler. */
export const runscConfigPath = (layout: Layout) => `${layout.installDir}/etc/runsc.toml`;
/** containerd 2.x drop-in the agent owns, beside the default config. */
export const CONTAINERD_DROPIN = "/etc/containerd/conf.d/50-sandbox-operator.toml";
/** CRI-O drop-in the agent owns; "50-" sorts after distro defaults and before admin overrides (99-*). */
export const CRIO_DROPIN = "/etc/crio/crio.conf.d/50-sandbox-operator.conf";

export const isKata = (backend: string) => backend.startsWith("kata-");

/** Annotation keys of `allowed` that reach this backend's runtime (io.katacontainers.* for Kata, dev.gvisor.* for gVisor). */
export function annotationsFor(backend: string, allowed: readonly string[] = []): string[] {
  const prefix = isKata(backend) ? "io.katacontainers." : "dev.gvisor.";
  return [...new Set(allowed.filter((k) => k.startsWith(prefix)))].sort();
}

/** TOML basic string, escaped. */
export function tomlString(s: string): string {
  return JSON.stringify(s).replace(/\\u([0-9a-f]{4})/gi, (_m, h: string) => `\\u${h.toUpperCase()}`);
}

export const tomlArray = (items: readonly string[]) => `[${items.map(tomlString).join(", ")}]`;

/** A TOML key: bare when it can be, quoted otherwise (handler names may contain dots in theory). */
export const tomlKey = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k));
