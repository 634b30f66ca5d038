// Builds the sandbox-operator image without Docker: this machine's node and nsenter binaries and
// the shared libraries ldd names, production node_modules, the compiled app and the non-JS files
// it loads at run time; written as an OCI archive.
import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, resolve } from "node:path";
import { buildImage, ociArch, type BuiltImage } from "./oci.js";
import { normalMode, type TarEntry } from "./tar.js";
import { AGENT_PAYLOAD_DIR, ENTRYPOINTS, IMAGE_APP_DIR, NODE_BIN, VERIFY_TOOLS_DIR } from "../manifests/names.js";

export const DEFAULT_REPOSITORY = "localhost/sandbox-operator";

export interface BuildOptions {
  /** Repository root (package.json, package-lock.json, node_modules, src). */
  root: string;
  repository?: string;
  tag?: string;
  /** The node binary to ship; default: the one running this build. */
  nodeBinary?: string;
  /**
   * A directory with runsc and containerd-shim-runsc-v1 for the agent to install on hosts that
   * lack them; they become a fourth layer under AGENT_PAYLOAD_DIR. Default: none (empty dir).
   */
  payloadDir?: string;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

export interface BuildResult extends BuiltImage {
  repository: string;
  tag: string;
}

/** Parses `ldd` output into the absolute paths of the libraries (and the loader) it names. */
export function parseLdd(output: string): string[] {
  const paths: string[] = [];
  for (const line of output.split("\n")) {
    const arrow = /=>\s+(\/\S+)\s+\(/.exec(line);
    const direct = /^\s*(\/\S+)\s+\(/.exec(line);
    const p = arrow?.[1] ?? direct?.[1];
    if (p) paths.push(p);
    else if (/=>\s+not found/.test(line)) throw new Error(`ldd: a library is missing on this machine: ${line.trim()}`);
  }
  return [...new Set(paths)].sort();
}

/**
 * Adds a host path as it is on this machine, symlinks included: for /lib/x/libc.so.6 on a
 * merged-/usr system that is the symlink lib -> usr/lib plus the file under usr/lib.
 */
export function hostPathEntries(path: string, read = { lstat: lstatSync, readlink: readlinkSync, readFile: readFileSync }): TarEntry[] {
  const out: TarEntry[] = [];
  let pending = posix.normalize(path).split("/").filter(Boolean);
  let current = "";
  for (let hops = 0; pending.length > 0; ) {
    const next = `${current}/${pending[0]}`;
    const st = read.lstat(next);
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw new Error(`too many symlinks resolving ${path}`);
      const target = read.readlink(next).toString();
      out.push({ path: next, type: "symlink", target });
      const resolved = target.startsWith("/") ? target : posix.join(current || "/", target);
      pending = [...posix.normalize(resolved).split("/").filter(Boolean), ...pending.slice(1)];
      current = "";
      continue;
    }
    current = next;
    pending = pending.slice(1);
    if (pending.length === 0) {
      if (!st.isFile()) throw new Error(`${path}: expected a regular file at ${current}`);
      out.push({ path: current, type: "file", mode: normalMode("file", st.mode), content: read.readFile(current) as Buffer });
    }
  }
  return out;
}

/** Every file under `dir` as entries below `prefix`, skipping names `skip` rejects. */
function treeEntries(dir: string, prefix: string, skip: (rel: string, isDir: boolean) => boolean, rel = ""): TarEntry[] {
  const out: TarEntry[] = [];
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const abs = join(dir, r);
    const st = lstatSync(abs);
    if (skip(r, st.isDirectory())) continue;
    const path = `${prefix}/${r}`;
    if (st.isSymbolicLink()) out.push({ path, type: "symlink", target: readlinkSync(abs) });
    else if (st.isDirectory()) {
      out.push({ path, type: "dir", mode: 0o755 });
      out.push(...treeEntries(dir, prefix, skip, r));
    } else if (st.isFile()) out.push({ path, type: "file", mode: normalMode("file", st.mode), content: readFileSync(abs) });
  }
  return out;
}

interface LockPackage {
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  link?: boolean;
  extraneous?: boolean;
}

/** node_modules directories of the production dependencies, from package-lock.json. */
export function productionPackages(lock: { packages?: Record<string, LockPackage> }): string[] {
  return Object.entries(lock.packages ?? {})
    .filter(([path, p]) => path.startsWith("node_modules/") && !p.dev && !p.devOptional && !p.link && !p.extraneous)
    .map(([path]) => path)
    .sort();
}

function nodeModulesEntries(root: string): TarEntry[] {
  const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages?: Record<string, LockPackage & { optional?: boolean }> };
  const out: TarEntry[] = [];
  for (const pkg of productionPackages(lock)) {
    let exists = true;
    try {
      lstatSync(join(root, pkg));
    } catch {
      exists = false;
    }
    if (!exists) {
      if (lock.packages?.[pkg]?.optional) continue; // an optional dependency for another platform
      throw new Error(`${pkg} is in package-lock.json but not installed: run npm ci`);
    }
    // Nested node_modules are packages of their own, listed separately in the lock file.
    out.push(...treeEntries(join(root, pkg), `${IMAGE_APP_DIR}/${pkg}`, (rel, isDir) => isDir && (rel === "node_modules" || rel.endsWith("/node_modules") || rel === ".bin")));
  }
  return out;
}

function compileApp(root: string, log: (l: string) => void): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "sandbox-operator-image-"));
  log(`compiling the app (tsc) into ${dir}`);
  // A fresh output directory: stale files in dist/ must not reach the image.
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(root, "tsconfig.json"), "--outDir", dir, "--sourceMap", "false"], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Host binaries the image carries besides node: nsenter (util-linux) lets the agent run the host's
 * systemctl inside PID 1's namespaces (hostPID), since the image has no shell, chroot or systemctl.
 */
export const HOST_TOOLS = ["/usr/bin/nsenter"] as const;

/**
 * Files under src/ that the compiled app reads at run time (tsc emits only JavaScript); they go
 * to the same place under dist/ so `import.meta.url`-relative lookups find them. build.test.ts
 * fails when src/ gains a non-TypeScript file outside testdata/ that is not listed here.
 */
export const RUNTIME_ASSETS = ["src/agent/cri/runtime.proto"] as const;

/** Each binary and every shared library ldd names for it (symlinks as on this machine), each path once. */
export function binaryEntries(binaries: readonly string[], ldd: (bin: string) => string = (b) => execFileSync("ldd", [b], { encoding: "utf8" })): TarEntry[] {
  const seen = new Set<string>();
  const out: TarEntry[] = [];
  for (const p of binaries.flatMap((b) => [b, ...parseLdd(ldd(b))])) {
    for (const e of hostPathEntries(p)) {
      if (seen.has(e.path)) continue;
      seen.add(e.path);
      out.push(e);
    }
  }
  return out;
}

/** Debian's busybox-static: the verification container's shell and tools (VERIFY_TOOLS_DIR). */
export const VERIFY_BUSYBOX = "/usr/bin/busybox";
export const VERIFY_APPLETS = ["sh", "uname", "dmesg", "head"] as const;

export function verifyToolsEntries(busybox = VERIFY_BUSYBOX): TarEntry[] {
  let content: Buffer;
  try {
    content = readFileSync(busybox);
  } catch {
    throw new Error(`${busybox} is missing: the image's verification tools come from Debian's busybox-static (apt-get install busybox-static, or bash scripts/setup.sh demo)`);
  }
  // A dynamically linked busybox would need its libraries in the image too; the static one needs none.
  if (content.subarray(0, 4096).includes("ld-linux")) throw new Error(`${busybox} is dynamically linked: install busybox-static instead of busybox`);
  return [
    { path: VERIFY_TOOLS_DIR, type: "dir", mode: 0o755 },
    { path: `${VERIFY_TOOLS_DIR}/busybox`, type: "file", mode: 0o755, content },
    ...VERIFY_APPLETS.map((a): TarEntry => ({ path: `${VERIFY_TOOLS_DIR}/${a}`, type: "symlink", target: "busybox" })),
  ];
}

export const PAYLOAD_FILES = ["runsc", "containerd-shim-runsc-v1"] as const;

export function payloadLayer(dir: string): { comment: string; entries: TarEntry[] } {
  const entries = PAYLOAD_FILES.map((name): TarEntry => {
    const file = join(dir, name);
    let st;
    try {
      st = lstatSync(file);
    } catch {
      throw new Error(`--payload-dir ${dir}: ${name} is missing (the payload is runsc and containerd-shim-runsc-v1 from the same gVisor release)`);
    }
    if (!st.isFile() || !(st.mode & 0o111)) throw new Error(`--payload-dir ${dir}: ${name} is not an executable file`);
    return { path: `${AGENT_PAYLOAD_DIR}/${name}`, type: "file", mode: 0o755, content: readFileSync(file) };
  });
  return { comment: "gVisor payload the agent installs on hosts (runsc, containerd-shim-runsc-v1)", entries };
}

/**
 * Numeric uid:gid, not a name: the kubelet enforces runAsNonRoot only on a numeric USER, and the
 * manifests set no runAsUser (OpenShift assigns one from the namespace's range).
 */
export const IMAGE_USER = "65532:65532";

export function collectLayers(root: string, nodeBinary: string, compiled: string, payloadDir?: string): Array<{ comment: string; entries: TarEntry[] }> {
  const runtime: TarEntry[] = [
    ...binaryEntries([nodeBinary, ...HOST_TOOLS]),
    { path: "etc/passwd", type: "file", mode: 0o644, content: Buffer.from("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n") },
    { path: "etc/group", type: "file", mode: 0o644, content: Buffer.from("root:x:0:\nnonroot:x:65532:\n") },
    { path: "tmp", type: "dir", mode: 0o1777 },
    { path: AGENT_PAYLOAD_DIR, type: "dir", mode: 0o755 },
    ...verifyToolsEntries(),
  ];
  // The binary must end up at NODE_BIN whatever its host path, since the manifests call it there.
  if (posix.normalize(nodeBinary) !== NODE_BIN) runtime.push({ path: NODE_BIN, type: "file", mode: 0o755, content: readFileSync(nodeBinary) });
  const app: TarEntry[] = [
    { path: `${IMAGE_APP_DIR}/package.json`, type: "file", mode: 0o644, content: readFileSync(join(root, "package.json")) },
    ...treeEntries(join(compiled, "src"), `${IMAGE_APP_DIR}/dist/src`, (rel, isDir) => !isDir && (/\.test\.js$/.test(rel) || rel.endsWith(".map"))),
    ...RUNTIME_ASSETS.map((a): TarEntry => ({ path: `${IMAGE_APP_DIR}/dist/${a}`, type: "file", mode: 0o644, content: readFileSync(join(root, a)) })),
  ];
  return [
    { comment: `node ${nodeBinary}, ${HOST_TOOLS.join(", ")} and the shared libraries they link (ldd); busybox-static for verification Pods`, entries: runtime },
    { comment: "production node_modules (package-lock.json, dev dependencies excluded)", entries: nodeModulesEntries(root) },
    { comment: "the compiled app (tsc: dist/src)", entries: app },
    ...(payloadDir ? [payloadLayer(payloadDir)] : []),
  ];
}

export function buildOperatorImage(opts: BuildOptions): BuildResult {
  const root = resolve(opts.root);
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
  const repository = opts.repository ?? DEFAULT_REPOSITORY;
  const tag = opts.tag ?? pkg.version;
  const nodeBinary = opts.nodeBinary ?? process.execPath;
  const compiled = compileApp(root, log);
  try {
    log("collecting layers: node + nsenter + shared libraries, production node_modules, app + runtime assets");
    const layers = collectLayers(root, nodeBinary, compiled.dir, opts.payloadDir);
    log("writing the OCI layout (deterministic tar, gzip)");
    const built = buildImage({
      repository,
      tag,
      architecture: ociArch(process.arch),
      layers,
      entrypoint: [NODE_BIN, ENTRYPOINTS.cli],
      env: ["PATH=/usr/bin:/bin", "NODE_ENV=production"],
      user: IMAGE_USER,
      workingDir: IMAGE_APP_DIR,
      labels: { "org.opencontainers.image.title": "sandbox-operator", "org.opencontainers.image.version": tag },
    });
    return { ...built, repository, tag };
  } finally {
    compiled.cleanup();
  }
}

export function writeArchive(result: BuildResult, file: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, result.archive);
  renameSync(tmp, file);
}
