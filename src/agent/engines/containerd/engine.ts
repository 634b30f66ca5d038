// containerd engine: writes our runtime tables where this node's containerd reads them (the layout:
// a k3s/microk8s template, a drop-in, or a marked block in config.toml) and can take them out again.
import { execFileSync } from "node:child_process";
import { posix } from "node:path";
import { readOrNull } from "../../fsutil.js";
import { hostCommand } from "../../restart.js";
import type { FileChange } from "../../txn.js";
import type { Engine, PlanInput } from "../engine.js";
import { addImport, renderContainerdDropIn, renderContainerdRuntimes, runtimesKeyPath, spliceManagedBlock, stripManagedBlock, type ContainerdConfigVersion } from "../../../render/node/containerd-runtimes.js";
import { criPluginKey, dig, loadConfigFiles, localPath, parseToml, type PathMaps, type Tree } from "./config-files.js";
import { describeLayout, detectLayout, OUR_FILE, type ContainerdLayout } from "./distro-layout.js";

export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";

export interface ContainerdEngineOptions {
  hostRoot: string;
  /** The config.toml this containerd runs with, as a host path (probe: its --config); default /etc/containerd/config.toml. */
  configPath?: string;
  /** Major version from the CRI Version call (1 or 2). */
  major: number;
  /** containerd binary used for `containerd config default` when config.toml is missing. */
  containerdBinary?: string;
  /** Host process whose mount namespace runs the host's own containerd when its binary cannot run here (default 1). */
  hostPid?: number;
  /** Prefix the runtime sees in front of host paths (tests); "" on a node. */
  configPrefix?: string;
}

function defaultRuntimeName(cfg: Tree, version: ContainerdConfigVersion): string {
  const containerd = dig(cfg, runtimesKeyPath(version).slice(0, -1)) as Tree | undefined;
  const name = containerd?.default_runtime_name;
  return typeof name === "string" && name ? name : "runc";
}

const asVersion = (v: unknown, fallback: ContainerdConfigVersion): ContainerdConfigVersion => (v === 1 || v === 2 || v === 3 ? v : fallback);

export class ContainerdEngine implements Engine {
  readonly kind = "containerd" as const;
  private readonly config: string;
  private readonly maps: PathMaps;

  constructor(private readonly o: ContainerdEngineOptions) {
    this.config = o.configPath ?? CONTAINERD_CONFIG;
    this.maps = { hostRoot: o.hostRoot, configPrefix: o.configPrefix ?? "" };
  }

  /** Detected from the files as they are now (a template we created keeps the same layout). */
  layout(): ContainerdLayout {
    return detectLayout(this.maps, this.config, this.o.major);
  }

  get describe(): string {
    return `containerd ${this.o.major}.x, ${describeLayout(this.layout())}`;
  }

  private local = (hostPath: string) => localPath(this.maps, hostPath);
  private read = (hostPath: string) => readOrNull(this.local(hostPath))?.toString("utf8") ?? null;

  /** containerd's own defaults, for a host without config.toml (a file with only our tables would drop CRI defaults before 2.0). */
  private defaults(): string {
    const bin = this.o.containerdBinary ?? this.local("/usr/bin/containerd");
    const attempts: Array<[string, string[]]> = [[bin, ["config", "default"]]];
    // The host's binary may need host libraries the image lacks: then run it on the host (hostPID).
    if (this.o.hostRoot !== "/") {
      const [cmd, ...args] = hostCommand(this.o.hostPid ?? 1, ["containerd", "config", "default"]);
      attempts.push([cmd!, args]);
    }
    for (const [cmd, args] of attempts) {
      try {
        const out = execFileSync(cmd, args, { encoding: "utf8", timeout: 15_000, stdio: ["ignore", "pipe", "ignore"] });
        if (/^version\s*=/m.test(out)) return out;
      } catch {
        // Try the next way to run the host's containerd.
      }
    }
    return "version = 2\n";
  }

  plan(input: PlanInput): FileChange[] {
    const l = this.layout();
    if (l.method === "in-place") return this.planInPlace(l, input);
    if (l.method === "template") return this.planTemplate(l, input);
    return this.planDropIn(l, input);
  }

  private static clash(where: string, existing: Tree, input: PlanInput): void {
    const clash = input.handlers.filter((h) => h.name in existing).map((h) => h.name);
    if (clash.length) throw new Error(`${where} already defines runtime(s) ${clash.join(", ")} that sandbox-operator did not write; remove them or rename the handler`);
  }

  private block(input: PlanInput, version: ContainerdConfigVersion, redeclareDefault: string | undefined): string {
    return renderContainerdRuntimes(input.handlers, { layout: input.runtimeLayout, configVersion: version, allowedAnnotations: input.allowedAnnotations, redeclareDefault, runtimeTypeAsPath: this.o.major < 2 });
  }

  /** The spliced text must parse and carry our tables where containerd reads them. */
  private static lands(text: string, what: string, version: ContainerdConfigVersion, input: PlanInput): void {
    const check = dig(parseToml(text, `${what} after our edit`), runtimesKeyPath(version)) as Tree | undefined;
    for (const h of input.handlers) {
      if (!check?.[h.name]) throw new Error(`${what}: our runtime ${h.name} does not land under ${runtimesKeyPath(version).join(".")} (inline plugin tables?); edit the file to use [table] headers`);
    }
  }

  /** containerd 1.x: a marked block in the file whose CRI section containerd uses (config.toml, or an import that replaces it). */
  private planInPlace(l: ContainerdLayout, input: PlanInput): FileChange[] {
    const path = this.local(l.target);
    const current = this.read(l.target);
    const base = current === null ? this.defaults() : stripManagedBlock(current);
    const cfg = parseToml(base, path);
    const key = criPluginKey(cfg);
    const version = key === "cri" ? 1 : key ? 2 : asVersion(cfg.version, 1);
    if (typeof cfg.version === "number" && cfg.version > 2) throw new Error(`${path} has version = ${cfg.version}, which containerd 1.x cannot read; fix the file`);
    const existing = (dig(cfg, runtimesKeyPath(version)) ?? {}) as Tree;
    ContainerdEngine.clash(path, existing, input);
    if (input.handlers.length === 0) return [{ path, content: Buffer.from(base), foreign: true, restart: true }];
    const defaultName = defaultRuntimeName(cfg, version);
    const next = spliceManagedBlock(base, this.block(input, version, defaultName in existing ? undefined : defaultName));
    ContainerdEngine.lands(next, path, version, input);
    return [{ path, content: Buffer.from(next), foreign: true, restart: true }];
  }

  /**
   * k3s/RKE2/microk8s: our block appended to the template the distribution renders config.toml
   * from. The rendered config.toml (what runs now) says which runtimes and config version exist.
   */
  private planTemplate(l: ContainerdLayout, input: PlanInput): FileChange[] {
    const path = this.local(l.target);
    const current = this.read(l.target);
    if (current === null && l.templateBase === undefined) throw new Error(`${l.distribution}'s template ${l.target} is missing; ${l.distribution} renders ${l.config} from it at each start: restore it (reinstall ${l.distribution}) before applying`);
    const rendered = this.read(l.config);
    const running = rendered === null ? null : stripManagedBlock(rendered);
    const cfg = running === null ? {} : parseToml(running, this.local(l.config));
    const version = asVersion(cfg.version, this.o.major >= 2 ? 3 : 2);
    const existing = (dig(cfg, runtimesKeyPath(version)) ?? {}) as Tree;
    ContainerdEngine.clash(`${this.local(l.config)} (rendered from ${l.target})`, existing, input);
    const base = current === null ? l.templateBase! : stripManagedBlock(current);
    if (input.handlers.length === 0) return [{ path, content: current === null ? null : Buffer.from(base), foreign: true, restart: true }];
    const defaultName = defaultRuntimeName(cfg, version);
    // The base template declares the default runtime itself; a second table would not parse.
    const redeclare = running !== null && !(defaultName in existing) ? defaultName : undefined;
    const block = this.block(input, version, redeclare);
    const next = spliceManagedBlock(base, block);
    // A Go template cannot be parsed as TOML: check what the next render will give instead.
    ContainerdEngine.lands(spliceManagedBlock(running ?? `version = ${version}\n`, block), `${l.target} rendered`, version, input);
    return [{ path, content: Buffer.from(next), foreign: true, restart: true }];
  }

  /** Our own file: in a directory config.toml already imports, or in conf.d/ with one imports entry added. */
  private planDropIn(l: ContainerdLayout, input: PlanInput): FileChange[] {
    const files = loadConfigFiles(this.maps, l.config, this.o.major).filter((f) => f.path !== l.target);
    const root = files[0]?.tree ?? {};
    // A drop-in may not have a higher version than the root config (containerd 2.x refuses to start).
    const version = asVersion(root.version, this.o.major >= 2 ? 3 : 2);
    const existing: Tree = {};
    let defaultName = "runc";
    for (const f of files) {
      for (const v of [3, 2] as const) Object.assign(existing, (dig(f.tree, runtimesKeyPath(v)) ?? {}) as Tree);
      const named = dig(f.tree, [...runtimesKeyPath(version).slice(0, -1), "default_runtime_name"]);
      if (typeof named === "string" && named) defaultName = named;
    }
    ContainerdEngine.clash(`${this.local(l.config)} (with its imports)`, existing, input);
    const redeclareDefault = defaultName in existing ? undefined : defaultName;
    const opts = { layout: input.runtimeLayout, configVersion: version, allowedAnnotations: input.allowedAnnotations, redeclareDefault, runtimeTypeAsPath: this.o.major < 2 };
    const content = input.handlers.length ? Buffer.from(renderContainerdDropIn(input.handlers, opts)) : null;
    const changes: FileChange[] = [{ path: this.local(l.target), content, foreign: false, restart: true }];
    if (l.method === "drop-in+import") {
      const current = this.read(l.config);
      const base = current ?? "version = 3\n";
      const cfg = parseToml(base, this.local(l.config));
      const imports = Array.isArray(cfg.imports) ? (cfg.imports as string[]) : [];
      const next = addImport(base, input.runtimePath(l.target), imports);
      if (next !== null || current === null) changes.push({ path: this.local(l.config), content: Buffer.from(next ?? base), foreign: true, restart: true });
    }
    return changes;
  }

  unedit(path: string, current: string, input: Pick<PlanInput, "runtimePath">): string {
    const text = stripManagedBlock(current);
    if (path !== this.local(this.config)) return text;
    const imp = JSON.stringify(input.runtimePath(`${posix.dirname(this.config)}/conf.d/${OUR_FILE}`));
    return text
      .split("\n")
      .map((l) => (/^imports\s*=/.test(l) ? l.replace(`, ${imp}`, "").replace(`${imp}, `, "").replace(imp, "") : l))
      .filter((l) => !/^imports\s*=\s*\[\s*\]\s*$/.test(l))
      .join("\n");
  }
}
