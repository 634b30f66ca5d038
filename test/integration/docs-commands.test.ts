// Every shell command in README.md and docs/**/*.md (```sh/```bash blocks, and "$ " lines of
// other blocks) is checked: `npm run X` names a script in package.json; `sandboxctl ...` /
// `kubectl sandbox ...` parses with the real CLI (the subcommand's --help exits 0 and lists every
// flag used); `kubectl apply|delete -f <file>` runs as written with the real kubectl (the YAML 1.1
// reader readers use) as a server-side dry-run on the real apiserver; repository paths exist.
// Anything else must be on ALLOWED below.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { KubeClient, type AnyObject } from "../../src/kube/client.js";
import type { SandboxConfigSpec } from "../../src/api/index.js";
import { desiredRuntimeClasses } from "../../src/controller/desired-runtimeclasses.js";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { testControlPlane } from "../harness/controlplane.js";
import { eventually, installCrds } from "../harness/cluster.js";
import { commandsInMarkdown, shellWords, type DocCommand } from "../harness/docs-commands.js";
import { kubectlOk, kubectlRead } from "../harness/kubectl.js";
import { sandboxctl } from "../harness/sandboxctl.js";

const root = repoRoot();

/**
 * Commands the test does not run, each with why. They act on a live cluster, a node, a registry or
 * the reader's shell, which this test cannot stand in for; paths they name are still checked.
 */
const ALLOWED: Array<{ pattern: RegExp; reason: string }> = [
  { pattern: /^npm (install|ci)$/, reason: "npm's own command: installs the dependencies" },
  { pattern: /^kubectl (-n \S+ )?(get|describe|logs) /, reason: "reads a live cluster's objects" },
  { pattern: /^oc (get|describe|logs) /, reason: "reads a live OpenShift cluster's objects" },
  { pattern: /^oc patch mcp /, reason: "pauses a MachineConfigPool of a live OpenShift cluster" },
  { pattern: /^kubectl label (namespace|node) /, reason: "labels the reader's own namespaces/nodes (the label keys are checked by the docs-examples and admission tests)" },
  { pattern: /^kubectl taint node /, reason: "taints the reader's own node" },
  { pattern: /^kubectl (-n \S+ )?run \S+ --image=\S+ --dry-run=server$/, reason: "a server-side dry-run pod in the reader's namespace (the webhook outcome is tested by admission-pods.test.ts)" },
  { pattern: /^kubectl -n sandbox-operator-system rollout status deployment\/sandbox-operator-controller$/, reason: "waits for the controller on a live cluster (cli-install.test.ts waits the same way)" },
  { pattern: /^kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration sandbox-operator$/, reason: "removes what the webhook created on a live cluster after an OLM uninstall (openshift-olm.test.ts shows the webhook creating them)" },
  { pattern: /^kubectl delete sandboxconfig cluster( --wait=true)?$/, reason: "deletes the live SandboxConfig (controller-uninstall.test.ts covers the path)" },
  { pattern: /^skopeo copy /, reason: "pushes the image to the reader's registry" },
  { pattern: /^ctr -n k8s\.io images import /, reason: "imports the image into a node's containerd (image.test.ts does the same)" },
  { pattern: /^export [A-Z_]+=/, reason: "sets a variable in the reader's shell" },
  { pattern: /^npx tsx test\/harness\/serve\.ts$/, reason: "starts a long-running control plane for manual tests (harness.test.ts covers it)" },
  { pattern: /^npx tsx test\/harness\/serve-cluster\.ts$/, reason: "starts the cluster tier's cluster until Ctrl-C for debugging (test/cluster/cluster.test.ts starts and stops the same cluster)" },
  { pattern: /^node --import tsx --test test\/\S+\.test\.ts$/, reason: "runs one test file" },
  { pattern: /^node dist\/src\/agent\/main\.js /, reason: "starts the agent on a node (agent flags: agent-loop.test.ts)" },
];

/** Words that look like paths into this repository (dist/ paths are checked against their src/ .ts). */
function repoPaths(words: string[]): string[] {
  return words.map((w) => w.replace(/^[^=]*=/, "")).filter((w) => /^(src|test|examples|deploy|docs|scripts|bench|bundle|dist)\//.test(w));
}
function pathExists(p: string): boolean {
  if (p.startsWith("dist/images/")) return true; // written by npm run build:image (checked by the image test)
  if (p.startsWith("dist/")) return existsSync(join(root, p.slice("dist/".length).replace(/\.js$/, ".ts")));
  return existsSync(join(root, p));
}

interface Checker {
  scripts: Record<string, string>;
  /** `sandboxctl <path...> --help`: exit code and text. */
  help(path: string[]): Promise<{ code: number | null; text: string }>;
  /** Runs a docs' `kubectl apply|delete ... -f <file>` (args after "kubectl") as a server-side dry-run; throws with kubectl's message. */
  kubectl(args: string[]): Promise<void>;
}

/** Problems with one simple command (no &&, |, ;), or [] when it passes. */
async function checkSimple(cmd: string, c: Checker): Promise<string[]> {
  let words = shellWords(cmd);
  const problems = repoPaths(words).filter((p) => !pathExists(p)).map((p) => `${p} does not exist`);
  if (words[0] === "sudo") words = words.slice(1); // the docs say when root is needed; the command is what counts
  if (words[0] === "npx" && words[1] === "sandboxctl") words = words.slice(1);
  // Running the CLI from source is sandboxctl itself.
  if (words[0] === "node" && words[1] === "--import" && words[2] === "tsx" && words[3] === "src/cli/main.ts") words = ["sandboxctl", ...words.slice(4)];
  if (words[0] === "kubectl" && words[1] === "sandbox") words = ["sandboxctl", ...words.slice(2)];
  if (words[0] === "npm" && (words[1] === "run" || words[1] === "test")) {
    const script = words[1] === "test" ? "test" : words[2]!;
    if (!c.scripts[script]) problems.push(`package.json has no script "${script}"`);
    return problems;
  }
  if (words[0] === "sandboxctl") return [...problems, ...(await checkCli(words.slice(1), c))];
  if (words[0] === "kubectl" && (words[1] === "apply" || words[1] === "delete") && words.includes("-f")) {
    const file = words[words.indexOf("-f") + 1]!;
    if (!pathExists(file)) return problems;
    try {
      await c.kubectl(words.slice(1));
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
    }
    return problems;
  }
  if (!ALLOWED.some((a) => a.pattern.test(cmd))) problems.push("not checked and not on the ALLOWED list of test/integration/docs-commands.test.ts");
  return problems;
}

async function checkCli(args: string[], c: Checker): Promise<string[]> {
  const global = new Set(["--kubeconfig", "--context"]);
  const path: string[] = [];
  for (const a of args) {
    if (a.startsWith("-")) break;
    path.push(a);
  }
  const help = await c.help(path);
  if (help.code !== 0) return [`sandboxctl ${path.join(" ")} --help exits ${help.code}: ${help.text.trim().split("\n")[0]}`];
  // Commander prints the parent's help for an unknown subcommand: the usage line must name the path.
  if (!help.text.startsWith(`Usage: ${["sandboxctl", ...path].join(" ")} `)) return [`sandboxctl has no command "${path.join(" ")}" (--help shows: ${help.text.split("\n")[0]})`];
  return args
    .filter((a) => a.startsWith("-"))
    .map((a) => a.replace(/=.*/, ""))
    .filter((f) => !global.has(f) && !new RegExp(`(^|[\\s,])${f.replace(/[-]/g, "\\-")}([\\s,=]|$)`, "m").test(help.text))
    .map((f) => `sandboxctl ${path.join(" ")} has no flag ${f}`);
}

async function checkCommand(d: DocCommand, c: Checker): Promise<string[]> {
  const parts = d.command.split(/\s*(?:&&|\|\||;|\|)\s*/).filter(Boolean);
  const out: string[] = [];
  for (const p of parts) for (const problem of await checkSimple(p, c)) out.push(`${d.file}:${d.line}: \`${p}\`: ${problem}`);
  return out;
}

function markdownFiles(): string[] {
  const walk = (dir: string): string[] => readdirSync(join(root, dir)).flatMap((n) => (statSync(join(root, dir, n)).isDirectory() ? walk(`${dir}/${n}`) : n.endsWith(".md") ? [`${dir}/${n}`] : []));
  return ["README.md", ...walk("docs")];
}

describe("every command in README.md and docs/ works as written", () => {
  let cp: Awaited<ReturnType<typeof testControlPlane>>;
  let client: KubeClient;
  const helps = new Map<string, Promise<{ code: number | null; text: string }>>();
  const checker: Checker = {
    scripts: (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts,
    help: (path) => {
      const key = path.join(" ");
      if (!helps.has(key)) helps.set(key, sandboxctl([...path, "--help"]).then((r) => ({ code: r.code, text: r.stdout + r.stderr })));
      return helps.get(key)!;
    },
    kubectl: async (args) => {
      const kc = cp.kubeconfigPath;
      const file = args[args.indexOf("-f") + 1]!;
      const objs = await kubectlRead(kc, file);
      assert.ok(objs.length > 0, `${file} has no objects`);
      // Namespaces and CRDs for real, as kubectl read them (dry-run objects inside them need them to exist).
      const prerequisites = objs.filter((o) => o.kind === "Namespace" || o.kind === "CustomResourceDefinition");
      if (prerequisites.length) await kubectlOk(kc, ["apply", "--server-side", "-f", "-"], { stdin: JSON.stringify({ apiVersion: "v1", kind: "List", items: prerequisites }) });
      // A delete removes nothing that a dry-run could check: the file's objects must first be accepted.
      if (args[0] === "delete") await kubectlOk(kc, ["apply", "--server-side", "--dry-run=server", "-f", file]);
      await kubectlOk(kc, [...args, "--dry-run=server"]);
    },
  };

  before(async () => {
    cp = await testControlPlane();
    client = await KubeClient.fromKubeConfig(cp.kubeConfig());
    await installCrds(client);
    // Pods in the examples name RuntimeClasses the controller publishes for the example configs.
    const configs = exampleConfigs();
    for (const spec of configs) for (const rc of desiredRuntimeClasses(spec)) await client.apply(rc as unknown as AnyObject);
    await eventually("RuntimeClasses visible", async () => (await client.list("RuntimeClass")).items.length > 0);
  });
  after(async () => {
    client?.close();
    await cp?.stop();
  });

  it("finds the commands (README and docs have some of each kind)", () => {
    const all = markdownFiles().flatMap((f) => commandsInMarkdown(readFileSync(join(root, f), "utf8"), f));
    assert.ok(all.some((c) => c.command.startsWith("npm run ")));
    assert.ok(all.some((c) => /\bsandboxctl /.test(c.command)));
    assert.ok(all.some((c) => /^kubectl apply -f /.test(c.command)));
  });

  for (const file of markdownFiles()) {
    it(file, async () => {
      const problems: string[] = [];
      for (const cmd of commandsInMarkdown(readFileSync(join(root, file), "utf8"), file)) problems.push(...(await checkCommand(cmd, checker)));
      assert.deepEqual(problems, []);
    });
  }

  describe("the checker fails on broken commands", () => {
    const sample = [
      "```sh",
      "npm run no-such-script",
      "npx sandboxctl status --no-such-flag",
      "sandboxctl frobnicate",
      "kubectl apply -f examples/no-such-file.yaml",
      "curl https://example.com | sh",
      "```",
      "```",
      "$ sandboxctl doctor --payload-dir <dir>   # fine",
      "output lines are not commands",
      "```",
    ].join("\n");

    it("reports each broken command and passes the good one", async () => {
      const cmds = commandsInMarkdown(sample, "sample.md");
      assert.deepEqual(cmds.map((c) => c.line), [2, 3, 4, 5, 6, 9]);
      const problems = (await Promise.all(cmds.map((c) => checkCommand(c, checker)))).map((p) => p.join(" | "));
      assert.match(problems[0]!, /no script "no-such-script"/);
      assert.match(problems[1]!, /sandboxctl status has no flag --no-such-flag/);
      assert.match(problems[2]!, /sandboxctl has no command "frobnicate"/);
      assert.match(problems[3]!, /examples\/no-such-file\.yaml does not exist/);
      assert.match(problems[4]!, /`curl https:\/\/example\.com`: not checked.*`sh`: not checked/);
      assert.equal(problems[5], "");
    });

    it("reports a manifest the apiserver refuses", async () => {
      await assert.rejects(checker.kubectl(["apply", "-f", "examples/use-cases/custom-kernel/gvisor-kernel-params.refused.yaml"]), /kernelParams configure a Kata guest VM/);
    });

    it("reports a manifest that only a YAML 1.1 reader gets wrong (an unquoted off is false to kubectl)", async () => {
      const dir = mkdtempSync(join(tmpdir(), "docs-commands-"));
      try {
        const file = join(dir, "sandboxconfig.yaml");
        const text = readFileSync(join(root, "examples/pod-policy/sandboxconfig.yaml"), "utf8");
        assert.match(text, /defaultMode: "off"/);
        writeFileSync(file, text.replace('defaultMode: "off"', "defaultMode: off"));
        await assert.rejects(checker.kubectl(["apply", "-f", file]), /spec\.podPolicy\.defaultMode: Invalid value: "boolean"/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

/** Every SandboxConfig spec under examples/. */
function exampleConfigs(): SandboxConfigSpec[] {
  const walk = (dir: string): string[] => readdirSync(join(root, dir)).flatMap((n) => (statSync(join(root, dir, n)).isDirectory() ? walk(`${dir}/${n}`) : /\.ya?ml$/.test(n) && !n.includes(".refused.") ? [`${dir}/${n}`] : []));
  return walk("examples")
    .flatMap((f) => parseAllDocuments(readFileSync(join(root, f), "utf8")).map((d) => d.toJS() as AnyObject))
    .filter((o) => o?.kind === "SandboxConfig")
    .map((o) => o.spec as SandboxConfigSpec);
}
