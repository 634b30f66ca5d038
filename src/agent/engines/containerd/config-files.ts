// containerd's config files as containerd itself loads them: the root config, then its `imports`
// (globs sorted, relative paths beside the importing file, breadth first), each parsed once.
import { readdirSync } from "node:fs";
import { join, posix } from "node:path";
import { parse } from "smol-toml";
import { readOrNull } from "../../fsutil.js";

export type Tree = Record<string, unknown>;

export function parseToml(text: string, what: string): Tree {
  try {
    return parse(text) as Tree;
  } catch (e) {
    throw new Error(`${what} is not valid TOML (${(e as Error).message.split("\n")[0]}); fix it before applying`, { cause: e });
  }
}

export const dig = (t: Tree, path: readonly string[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Tree)[k] : undefined), t);

/** How host paths map for the agent: host path <-> the runtime's view (a prefix in tests) <-> this process's view (under the host root). */
export interface PathMaps {
  hostRoot: string;
  /** Prefix the runtime sees in front of host paths ("" on a node). */
  configPrefix: string;
}

export const localPath = (m: PathMaps, hostPath: string) => (m.hostRoot === "/" ? hostPath : join(m.hostRoot, hostPath));

/** A path as the runtime wrote it -> the host path; undefined when it lies outside the host root. */
export function hostOf(m: PathMaps, runtimePath: string): string | undefined {
  const prefix = m.configPrefix.replace(/\/+$/, "");
  if (!prefix) return runtimePath;
  return runtimePath === prefix || runtimePath.startsWith(`${prefix}/`) ? runtimePath.slice(prefix.length) || "/" : undefined;
}

export interface LoadedFile {
  /** Host path. */
  path: string;
  text: string;
  tree: Tree;
  /** Which file's `imports` named it (undefined for the root). */
  importedBy?: string;
}

/** Glob of the last path segment only (`dir/*.toml`), as containerd's filepath.Glob matches it: sorted. */
function expand(m: PathMaps, hostPattern: string): string[] {
  const dir = posix.dirname(hostPattern);
  const base = posix.basename(hostPattern);
  if (dir.includes("*")) return [];
  const re = new RegExp("^" + base.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join("[^/]*") + "$");
  let names: string[];
  try {
    names = readdirSync(localPath(m, dir));
  } catch {
    return [];
  }
  return names.filter((n) => re.test(n)).sort().map((n) => posix.join(dir, n));
}

/**
 * The root config (host path) and every file it imports, in containerd's load order. `major` picks
 * how a relative glob resolves (1.x: against the working directory, so it is skipped here; 2.x:
 * beside the importing file). Missing or unparsable imports are left out (containerd would fail on them itself).
 */
export function loadConfigFiles(m: PathMaps, root: string, major: number, rootText?: string | null): LoadedFile[] {
  const out: LoadedFile[] = [];
  const seen = new Set<string>();
  const pending: Array<{ path: string; importedBy?: string }> = [{ path: root }];
  while (pending.length) {
    const { path, importedBy } = pending.shift()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const text = path === root && rootText !== undefined ? rootText : readOrNull(localPath(m, path))?.toString("utf8") ?? null;
    if (text === null) continue;
    let tree: Tree;
    try {
      tree = parse(text) as Tree;
    } catch {
      if (path === root) throw new Error(`${root} is not valid TOML; fix it before applying`);
      continue;
    }
    out.push({ path, text, tree, importedBy });
    const imports = Array.isArray(tree.imports) ? tree.imports.filter((i): i is string => typeof i === "string") : [];
    for (const imp of imports) {
      const glob = imp.includes("*");
      let runtimePath = posix.normalize(imp);
      if (!posix.isAbsolute(runtimePath)) {
        if (glob && major < 2) continue;
        runtimePath = posix.join(posix.dirname(runtimeViewOf(m, path)), runtimePath);
      }
      const host = hostOf(m, runtimePath);
      if (host === undefined) continue;
      for (const p of glob ? expand(m, host) : [host]) pending.push({ path: p, importedBy: path });
    }
  }
  return out;
}

/** A host path as the runtime sees it. */
export const runtimeViewOf = (m: PathMaps, hostPath: string) => (m.configPrefix ? join(m.configPrefix, hostPath) : hostPath);

/** Directories (host paths) that a `dir/*.toml` or `dir/*` import of this config covers, in order. */
export function globImportDirs(m: PathMaps, config: string, tree: Tree): string[] {
  const imports = Array.isArray(tree.imports) ? tree.imports.filter((i): i is string => typeof i === "string") : [];
  const dirs: string[] = [];
  for (const imp of imports) {
    const base = posix.basename(imp);
    if (base !== "*.toml" && base !== "*") continue;
    const full = posix.isAbsolute(imp) ? imp : posix.join(posix.dirname(runtimeViewOf(m, config)), imp);
    const host = hostOf(m, posix.dirname(posix.normalize(full)));
    if (host !== undefined && !host.includes("*")) dirs.push(host);
  }
  return dirs;
}

/** The CRI plugin's key in a parsed config: "io.containerd.grpc.v1.cri" (version 2), "cri" (version 1), or undefined. */
export function criPluginKey(tree: Tree): "io.containerd.grpc.v1.cri" | "cri" | undefined {
  const plugins = tree.plugins as Tree | undefined;
  if (plugins && typeof plugins === "object") {
    if ("io.containerd.grpc.v1.cri" in plugins) return "io.containerd.grpc.v1.cri";
    if ("cri" in plugins) return "cri";
  }
  return undefined;
}
