// containerd engine: 1.x edits config.toml in place (a marked block, original backed up once; a
// missing file starts from containerd's defaults); 2.x writes an owned drop-in plus an import.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parse } from "smol-toml";
import { readOrNull } from "../../fsutil.js";
import { containerdDropIn } from "../../../render/node/layout.js";
import { hostCommand } from "../../restart.js";
import type { FileChange } from "../../txn.js";
import type { Engine, PlanInput } from "../engine.js";
import { addImport, renderContainerdDropIn, renderContainerdRuntimes, runtimesKeyPath, spliceManagedBlock, stripManagedBlock, type ContainerdConfigVersion } from "../../../render/node/containerd-runtimes.js";

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
}

type Tree = Record<string, unknown>;

function parseToml(text: string, what: string): Tree {
  try {
    return parse(text) as Tree;
  } catch (e) {
    throw new Error(`${what} is not valid TOML (${(e as Error).message.split("\n")[0]}); fix it before applying`, { cause: e });
  }
}

const dig = (t: Tree, path: string[]): unknown => path.reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Tree)[k] : undefined), t);

function defaultRuntimeName(cfg: Tree, version: ContainerdConfigVersion): string {
  const containerd = dig(cfg, runtimesKeyPath(version).slice(0, -1)) as Tree | undefined;
  const name = containerd?.default_runtime_name;
  return typeof name === "string" && name ? name : "runc";
}

export class ContainerdEngine implements Engine {
  readonly kind = "containerd" as const;
  readonly describe: string;
  private readonly configPath: string;
  /** Host path of our 2.x drop-in. */
  private readonly dropIn: string;

  constructor(private readonly o: ContainerdEngineOptions) {
    const config = o.configPath ?? CONTAINERD_CONFIG;
    this.configPath = join(o.hostRoot, config);
    this.dropIn = containerdDropIn(config);
    this.describe = o.major >= 2 ? `containerd ${o.major}.x (drop-in ${this.dropIn} + imports in ${config})` : `containerd 1.x (${config}, in place)`;
  }

  /** containerd's own defaults, for a host without config.toml (a file with only our tables would drop CRI defaults before 2.0). */
  private defaults(): string {
    const bin = this.o.containerdBinary ?? join(this.o.hostRoot, "usr/bin/containerd");
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
    return this.o.major >= 2 ? this.planV2(input) : this.planV1(input);
  }

  private planV1(input: PlanInput): FileChange[] {
    const current = readOrNull(this.configPath)?.toString("utf8") ?? null;
    const base = current === null ? this.defaults() : stripManagedBlock(current);
    const cfg = parseToml(base, this.configPath);
    const version = (typeof cfg.version === "number" ? cfg.version : 1) as ContainerdConfigVersion;
    if (version > 2) throw new Error(`${this.configPath} has version = ${version}, which containerd 1.x cannot read; fix the file`);
    const existing = (dig(cfg, runtimesKeyPath(version)) ?? {}) as Tree;
    const clash = input.handlers.filter((h) => h.name in existing).map((h) => h.name);
    if (clash.length) throw new Error(`${this.configPath} already defines runtime(s) ${clash.join(", ")} that sandbox-operator did not write; remove them or rename the handler`);
    if (input.handlers.length === 0) return [{ path: this.configPath, content: Buffer.from(base), foreign: true, restart: true }];
    const defaultName = defaultRuntimeName(cfg, version);
    const redeclareDefault = defaultName in existing ? undefined : defaultName;
    const block = renderContainerdRuntimes(input.handlers, { layout: input.runtimeLayout, configVersion: version, allowedAnnotations: input.allowedAnnotations, redeclareDefault, runtimeTypeAsPath: true });
    const next = spliceManagedBlock(base, block);
    // The result must parse and carry exactly our tables where containerd reads them.
    const check = dig(parseToml(next, `${this.configPath} after our edit`), runtimesKeyPath(version)) as Tree | undefined;
    for (const h of input.handlers) {
      if (!check?.[h.name]) throw new Error(`${this.configPath}: our runtime ${h.name} does not land under ${runtimesKeyPath(version).join(".")} (inline plugin tables?); edit the file to use [table] headers`);
    }
    return [{ path: this.configPath, content: Buffer.from(next), foreign: true, restart: true }];
  }

  private planV2(input: PlanInput): FileChange[] {
    const dropIn = join(this.o.hostRoot, this.dropIn);
    const importPath = input.runtimePath(this.dropIn);
    const changes: FileChange[] = [];
    const current = readOrNull(this.configPath)?.toString("utf8") ?? null;
    const base = current ?? "version = 3\n";
    const cfg = parseToml(base, this.configPath);
    const existing = (dig(cfg, runtimesKeyPath(3)) ?? dig(cfg, runtimesKeyPath(2)) ?? {}) as Tree;
    const clash = input.handlers.filter((h) => h.name in existing).map((h) => h.name);
    if (clash.length) throw new Error(`${this.configPath} already defines runtime(s) ${clash.join(", ")} that sandbox-operator did not write; remove them or rename the handler`);
    const defaultName = defaultRuntimeName(cfg, 3);
    const redeclareDefault = defaultName in existing ? undefined : defaultName;
    const dropContent = input.handlers.length ? Buffer.from(renderContainerdDropIn(input.handlers, { layout: input.runtimeLayout, allowedAnnotations: input.allowedAnnotations, redeclareDefault })) : null;
    changes.push({ path: dropIn, content: dropContent, foreign: false, restart: true });
    const imports = Array.isArray(cfg.imports) ? (cfg.imports as string[]) : [];
    const next = addImport(base, importPath, imports);
    if (next !== null || current === null) changes.push({ path: this.configPath, content: Buffer.from(next ?? base), foreign: true, restart: true });
    return changes;
  }

  unedit(path: string, current: string, input: Pick<PlanInput, "runtimePath">): string {
    if (this.o.major < 2) return stripManagedBlock(current);
    const imp = JSON.stringify(input.runtimePath(this.dropIn));
    return current
      .split("\n")
      .map((l) => (/^imports\s*=/.test(l) ? l.replace(`, ${imp}`, "").replace(`${imp}, `, "").replace(imp, "") : l))
      .filter((l) => !/^imports\s*=\s*\[\s*\]\s*$/.test(l) || path !== this.configPath)
      .join("\n");
  }
}
