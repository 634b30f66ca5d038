// Upstream binaries the tests run (kube-apiserver, etcd, ...), built from their Go modules into
// a cache keyed by version, once, with a visible progress line. No prebuilt downloads exist here.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
export const CACHE_DIR = process.env.SANDBOX_OPERATOR_CACHE ?? join(homedir(), ".cache", "sandbox-operator");

const K8S_VERSION = "v1.34.4";
const ETCD_VERSION = "v3.6.16";
const CONTAINERD2_VERSION = "v2.4.2";
const CNI_VERSION = "v1.10.0";
const REGISTRY_VERSION = "v3.1.2";
const CRIO_VERSION = "v1.34.0";
// gVisor publishes Go-buildable sources on its `go` branch; the proxy serves it as this pseudo-version.
export const GVISOR_VERSION = "v0.0.0-20260905035102-160fafc42237";

interface Component {
  version: string;
  /** Go module directory (under test/harness) that pins the upstream requirement. */
  moduleDir: string;
  pkg: string;
  tags?: string;
  ldflags?: string;
  cgo?: boolean;
  /** File name of the built binary when it differs from the component name. */
  binName?: string;
  /** Cache directory name when several components share one (the CNI plugins: one bin_dir). */
  dirName?: string;
  /** Replaces one file of a dependency at build time (in a vendored scratch copy of the module); `with` is relative to moduleDir. */
  overlay?: { module: string; file: string; with: string };
  /** Exact text replacements in files of a dependency (same vendored copy); each `from` must occur exactly once. */
  patches?: Array<{ module: string; file: string; from: string; to: string }>;
  /** Builds from something other than a Go module the proxy serves (a source fixture); writes the binary to `out`. */
  build?: (out: string) => Promise<void>;
}

/** Kata 4.1.0's runtime source with its vendored modules: the proxy does not serve it (fixtures/kata/README.md). */
export const KATA_FIXTURE = process.env.SANDBOX_OPERATOR_KATA_FIXTURE ?? join(HERE, "..", "..", "..", "shared", "fixtures", "kata", "kata-runtime-src-4.1.0-7c6ba40.tar.gz");
const KATA_CHECK_SOURCES = ["kata-check/main.go", "kata-check/katautils-additions.go.txt"];
/** Keyed by Kata's version and our checker's sources, so an edit to the checker rebuilds it. */
const KATA_CHECK_VERSION = `4.1.0-7c6ba40-${createHash("sha256")
  .update(KATA_CHECK_SOURCES.map((f) => readFileSync(join(HERE, f))).join("\0"))
  .digest("hex")
  .slice(0, 12)}`;

/** Extracts the Kata fixture tree, generates the one Go file its packages need, runs `body` in src/runtime, removes the tree. */
async function inKataTree(what: string, body: (runtime: string, env: NodeJS.ProcessEnv) => Promise<void>): Promise<void> {
  if (!existsSync(KATA_FIXTURE)) throw new Error(`${what} needs Kata's runtime source at ${KATA_FIXTURE} (see its README); it is missing`);
  const tree = join(CACHE_DIR, "src", `kata-runtime-4.1.0-7c6ba40-${what}-${process.pid}`);
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  const env: NodeJS.ProcessEnv = { ...goEnv(), GOPROXY: "off", GOFLAGS: "-mod=vendor -buildvcs=false", CGO_ENABLED: "0" };
  const runtime = join(tree, "src", "runtime");
  try {
    await runWithProgress("extract Kata 4.1.0 runtime source", "tar", ["-xzf", KATA_FIXTURE, "-C", tree], { cwd: tree, env });
    await runWithProgress("make pkg/katautils/config-settings.go", "make", ["pkg/katautils/config-settings.go", "SKIP_GO_VERSION_CHECK=1"], { cwd: runtime, env });
    await body(runtime, env);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
}

/** kata-check (test/harness/kata-check/main.go): our two files copied into the fixture tree, then an offline build against its vendor/. */
async function buildKataCheck(out: string): Promise<void> {
  await inKataTree("kata-check", async (runtime, env) => {
    mkdirSync(join(runtime, "cmd", "sandbox-operator-kata-check"));
    copyFileSync(join(HERE, "kata-check", "main.go"), join(runtime, "cmd", "sandbox-operator-kata-check", "main.go"));
    copyFileSync(join(HERE, "kata-check", "katautils-additions.go.txt"), join(runtime, "pkg", "katautils", "zz_sandbox_operator.go"));
    await runWithProgress("go build kata-check (Kata 4.1.0 loader; ~7 min cold on 2 cores)", "go", ["build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/sandbox-operator-kata-check"], { cwd: runtime, env });
  });
}

/** Kata's real containerd shim, unchanged, as its Makefile builds it (static, CGO off): the test Kata payload carries it. */
async function buildKataShim(out: string): Promise<void> {
  await inKataTree("kata-shim", async (runtime, env) => {
    await runWithProgress("go build containerd-shim-kata-v2 (Kata 4.1.0; several minutes cold on 2 cores)", "go", ["build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/containerd-shim-kata-v2"], { cwd: runtime, env });
  });
}

/** Where the Go module cache holds `module` as moduleDir's go.sum pins it (downloaded if missing). */
function moduleSource(moduleDir: string, module: string): string {
  const r = spawnSync("go", ["mod", "download", "-json", module], { cwd: join(HERE, moduleDir), env: goEnv(), encoding: "utf8" });
  const dir = r.status === 0 ? (JSON.parse(r.stdout) as { Dir?: string }).Dir : undefined;
  if (!dir) throw new Error(`go mod download ${module} in test/harness/${moduleDir} failed: ${r.error?.message ?? r.stderr.trim()}`);
  return dir;
}

/** pinns (CRI-O's namespace pinner, C in its module's pinns/src) with the system C compiler, static as upstream's Makefile builds it. */
async function buildPinns(out: string): Promise<void> {
  const src = join(moduleSource("crio-bin", "github.com/cri-o/cri-o"), "pinns", "src");
  const files = readdirSync(src).filter((f) => f.endsWith(".c")).map((f) => join(src, f));
  await runWithProgress("cc pinns", "cc", ["-std=c99", "-Os", "-Wall", "-Wextra", "-static", "-o", out, ...files], { cwd: tmpdir(), env: process.env });
}

/**
 * CRI-O 1.34.0 (the version the proxy serves) with cri-o#9974 backported, test-only: it lets a
 * `runtime_type = "vm"` runtime be gVisor's containerd-shim-runsc-v1 (the v2 naming rule refused
 * it) and reads the shim's JSON bootstrap reply. CRI-O releases with that change need no patch.
 */
const CRIO_GVISOR_SHIM_PATCHES = [
  {
    module: "github.com/cri-o/cri-o",
    file: "pkg/config/config.go",
    from: String.raw`RuntimeTypeVMBinaryPattern    = "containerd-shim-([a-zA-Z0-9\\-\\+])+-v2"`,
    to: String.raw`RuntimeTypeVMBinaryPattern    = "containerd-shim-([a-zA-Z0-9\\-\\+])+-v2|containerd-shim-runsc-v1"`,
  },
  {
    module: "github.com/cri-o/cri-o",
    file: "internal/oci/runtime_vm.go",
    from: "\taddress := strings.TrimSpace(string(out))\n",
    to: [
      "\taddress := strings.TrimSpace(string(out))",
      "\tvar bootstrap struct{ Address string `json:\"address\"` }",
      "\tif strings.HasPrefix(address, \"{\") && json.Unmarshal([]byte(address), &bootstrap) == nil && bootstrap.Address != \"\" {",
      "\t\taddress = bootstrap.Address",
      "\t}",
      "",
    ].join("\n"),
  },
];

function k8sLdflags(): string {
  const [, minor] = K8S_VERSION.slice(1).split(".");
  return ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
    .flatMap((p) => [
      `-X ${p}.gitVersion=${K8S_VERSION}`,
      `-X ${p}.gitMajor=1`,
      `-X ${p}.gitMinor=${minor}`,
      `-X ${p}.gitTreeState=clean`,
      `-X ${p}.buildDate=1970-01-01T00:00:00Z`,
    ])
    .join(" ");
}

export const COMPONENTS: Record<string, Component> = {
  "kube-apiserver": { version: K8S_VERSION, moduleDir: "k8s-bins", pkg: "k8s.io/kubernetes/cmd/kube-apiserver", tags: "selinux,notest,grpcnotrace", ldflags: k8sLdflags() },
  "kube-controller-manager": { version: K8S_VERSION, moduleDir: "k8s-bins", pkg: "k8s.io/kubernetes/cmd/kube-controller-manager", tags: "selinux,notest,grpcnotrace", ldflags: k8sLdflags() },
  // The cluster tier's node and client side, from the same k8s.io/kubernetes module.
  kubelet: { version: K8S_VERSION, moduleDir: "k8s-node-bins", pkg: "k8s.io/kubernetes/cmd/kubelet", tags: "selinux,notest,grpcnotrace", ldflags: k8sLdflags() },
  "kube-scheduler": { version: K8S_VERSION, moduleDir: "k8s-node-bins", pkg: "k8s.io/kubernetes/cmd/kube-scheduler", tags: "selinux,notest,grpcnotrace", ldflags: k8sLdflags() },
  "kube-proxy": { version: K8S_VERSION, moduleDir: "k8s-node-bins", pkg: "k8s.io/kubernetes/cmd/kube-proxy", tags: "selinux,notest,grpcnotrace", ldflags: k8sLdflags() },
  kubectl: { version: K8S_VERSION, moduleDir: "k8s-node-bins", pkg: "k8s.io/kubernetes/cmd/kubectl", tags: "notest", ldflags: k8sLdflags() },
  // The pod network: CNI plugins in one directory (the CNI bin_dir).
  ...Object.fromEntries(
    (["ipam/host-local", "main/bridge", "main/loopback", "meta/portmap"] as const).map((p) => {
      const bin = p.split("/")[1]!;
      return [`cni-${bin}`, { version: CNI_VERSION, moduleDir: "cni-bin", pkg: `github.com/containernetworking/plugins/plugins/${p}`, binName: bin, dirName: `cni-plugins-${CNI_VERSION}` }];
    }),
  ),
  // A real OCI registry (CNCF distribution) the cluster tier pushes images to and the kubelet pulls from.
  registry: { version: REGISTRY_VERSION, moduleDir: "registry-bin", pkg: "github.com/distribution/distribution/v3/cmd/registry" },
  etcd: { version: ETCD_VERSION, moduleDir: "etcd-bin", pkg: "go.etcd.io/etcd/server/v3" },
  "ignition-validate": { version: "v2.24.0", moduleDir: "openshift-bins", pkg: "github.com/coreos/ignition/v2/validate" },
  // Ignition itself (its main package, cgo for libblkid), whose files stage the MachineConfig node
  // test runs onto a host root. The file must be named `ignition`: Ignition picks its mode from
  // argv[0] (ignition-apply would be its container-flow mode). No SELinux relabel: these machines
  // have no policy or setfiles (RHCOS's build relabels; labels are not what the test checks).
  ignition: {
    version: "v2.24.0",
    moduleDir: "ignition-bin",
    pkg: "github.com/coreos/ignition/v2/internal",
    cgo: true,
    ldflags: "-X github.com/coreos/ignition/v2/internal/version.Raw=v2.24.0 -X github.com/coreos/ignition/v2/internal/distro.selinuxRelabel=false",
  },
  "operator-verify": { version: "v0.45.0", moduleDir: "openshift-bins", pkg: "github.com/operator-framework/api/cmd/operator-verify" },
  // containerd 2.x for the node tier's drop-in path (Debian ships 1.6); CGO off drops btrfs only.
  containerd2: { version: CONTAINERD2_VERSION, moduleDir: "containerd2-bin", pkg: "github.com/containerd/containerd/v2/cmd/containerd", binName: "containerd" },
  "containerd2-shim-runc-v2": { version: CONTAINERD2_VERSION, moduleDir: "containerd2-bin", pkg: "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2", binName: "containerd-shim-runc-v2" },
  ctr2: { version: CONTAINERD2_VERSION, moduleDir: "containerd2-bin", pkg: "github.com/containerd/containerd/v2/cmd/ctr", binName: "ctr" },
  // gVisor: runsc and its containerd shim from the same source, so their flags agree.
  runsc: { version: GVISOR_VERSION, moduleDir: "gvisor-bin", pkg: "gvisor.dev/gvisor/runsc" },
  // The shim pins itself at OOM score -999, which needs CAP_SYS_RESOURCE; root here lacks it, so the
  // test build tolerates EACCES there (gvisor-bin/oom_linux.go.txt explains). Production uses stock shims.
  "containerd-shim-runsc-v1": {
    version: `${GVISOR_VERSION}-oomtolerant`,
    moduleDir: "gvisor-bin",
    pkg: "gvisor.dev/gvisor/shim",
    overlay: { module: "github.com/containerd/containerd/v2", file: "pkg/sys/oom_linux.go", with: "oom_linux.go.txt" },
  },
  // CRI-O for the node tier: the daemon only, cgo for seccomp and SQLite (Debian's libseccomp-dev,
  // libsqlite3-dev), no gpgme/btrfs/devicemapper; conmon and crun come from Debian.
  crio: {
    version: `${CRIO_VERSION}-gvisorshim`,
    moduleDir: "crio-bin",
    pkg: "github.com/cri-o/cri-o/cmd/crio",
    tags: "containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp libsqlite3",
    cgo: true,
    patches: CRIO_GVISOR_SHIM_PATCHES,
  },
  pinns: { version: CRIO_VERSION, moduleDir: "crio-bin", pkg: "", build: buildPinns },
  // Our Kata configuration checker, built against Kata's own loader (test/harness/kata-check.ts runs it).
  "kata-check": { version: KATA_CHECK_VERSION, moduleDir: "kata-check", pkg: "", build: buildKataCheck },
  // Kata's shim from the same source, for the test Kata payload image (test/harness/kata-payload.ts); never shipped.
  "containerd-shim-kata-v2": { version: "4.1.0-7c6ba40", moduleDir: "kata-check", pkg: "", build: buildKataShim },
};

export function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOMODCACHE: join(CACHE_DIR, "go", "mod"),
    GOCACHE: join(CACHE_DIR, "go", "build"),
    GOTOOLCHAIN: "local",
    GOFLAGS: "-mod=mod",
  };
}

export function binaryPath(name: string): string {
  const c = COMPONENTS[name];
  if (!c) throw new Error(`unknown harness component ${name}; known: ${Object.keys(COMPONENTS).join(", ")}`);
  return join(CACHE_DIR, "bin", c.dirName ?? `${name}-${c.version}`, c.binName ?? name);
}

/** Runs a command, printing a one-line progress heartbeat to stderr while it runs. */
export async function runWithProgress(label: string, cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<void> {
  const started = Date.now();
  const tick = setInterval(() => {
    process.stderr.write(`  … ${label}: ${Math.round((Date.now() - started) / 1000)}s\n`);
  }, 30_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "inherit", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-8000);
      });
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${label} failed (exit ${code}):\n${stderr}`))));
    });
  } finally {
    clearInterval(tick);
  }
  process.stderr.write(`  ✓ ${label} in ${Math.round((Date.now() - started) / 1000)}s\n`);
}

/** A test that needs a binary the cache lacks fails here, loudly, when no Go toolchain can build it. */
function requireGo(name: string): void {
  const r = spawnSync("go", ["version"], { env: goEnv(), encoding: "utf8" });
  if (r.error || r.status !== 0) {
    throw new Error(`${name} is not in the cache (${CACHE_DIR}) and no Go toolchain can build it: \`go version\` failed (${r.error?.message ?? r.stderr.trim()}); install Go >= 1.26 on PATH`);
  }
}

/** Returns the binary's path, building it first when the cache lacks it. */
export async function ensureBinary(name: string): Promise<string> {
  const out = binaryPath(name);
  if (existsSync(out) && statSync(out).size > 0) return out;
  const c = COMPONENTS[name]!;
  requireGo(name);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  process.stderr.write(`building ${name} ${c.version} from Go ${c.build ? "source" : "modules"} into ${dirname(out)} (first time only; several minutes on 2 cores)\n`);
  if (c.build) {
    try {
      await c.build(tmp);
      renameSync(tmp, out);
    } finally {
      rmSync(tmp, { force: true });
    }
    return out;
  }
  const args = ["build", "-trimpath", "-o", tmp];
  const cleanups: string[] = [];
  if (c.tags) args.push(`-tags=${c.tags}`);
  args.push(`-ldflags=-s -w ${c.ldflags ?? ""}`.trim());
  let cwd = join(HERE, c.moduleDir);
  let env: NodeJS.ProcessEnv = { ...goEnv(), CGO_ENABLED: c.cgo ? "1" : "0" };
  if (c.overlay || c.patches) {
    // Go refuses overlays inside the module cache: vendor a scratch copy and change the files there.
    const scratch = mkdtempSync(join(tmpdir(), `sandbox-operator-${name}-`));
    cleanups.push(scratch);
    for (const f of ["go.mod", "go.sum"]) copyFileSync(join(cwd, f), join(scratch, f));
    await runWithProgress(`go mod vendor (${name})`, "go", ["mod", "vendor"], { cwd: scratch, env: goEnv() });
    if (c.overlay) copyFileSync(join(cwd, c.overlay.with), join(scratch, "vendor", c.overlay.module, c.overlay.file));
    for (const p of c.patches ?? []) {
      const file = join(scratch, "vendor", p.module, p.file);
      const text = readFileSync(file, "utf8");
      const n = text.split(p.from).length - 1;
      if (n !== 1) throw new Error(`${name}: patch of ${p.module}/${p.file} expects its text exactly once, found ${n} times: ${p.from.split("\n")[0]}`);
      writeFileSync(file, text.replace(p.from, p.to));
    }
    cwd = scratch;
    env = { ...env, GOFLAGS: "-mod=vendor" };
  }
  args.push(c.pkg);
  try {
    await runWithProgress(`go build ${name}`, "go", args, { cwd, env });
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
    for (const d of cleanups) rmSync(d, { recursive: true, force: true });
  }
  return out;
}
