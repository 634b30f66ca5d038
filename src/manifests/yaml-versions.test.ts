// Every YAML file in the repository, and every ```yaml block of README.md and docs/, means the same
// to a YAML 1.1 reader (kubectl through sigs.k8s.io/yaml and go-yaml, OLM) as to a 1.2 one (us).
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { repoRoot } from "./image-lock.js";
import { toYaml } from "./files.js";

const root = repoRoot();
/** Not ours: dependencies, build output, caches. */
const SKIP_DIRS = new Set(["node_modules", ".git", "dist", "coverage", ".cache"]);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return SKIP_DIRS.has(e.name) ? [] : walk(join(dir, e.name));
    return e.isFile() ? [relative(root, join(dir, e.name))] : [];
  });
}

const describeValue = (v: unknown) => `${JSON.stringify(v)} (${v === null ? "null" : Array.isArray(v) ? "array" : typeof v})`;

/** Appends the paths where `a` (the 1.1 reading) and `b` (the 1.2 reading) differ. */
function diff(a: unknown, b: unknown, path: string, out: string[]): void {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
  if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const sub = Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`;
      if (!(k in a)) out.push(`${sub}: only YAML 1.2 has this key (YAML 1.1 reads the key as something else)`);
      else if (!(k in b)) out.push(`${sub}: only YAML 1.1 has this key (YAML 1.2 reads the key as something else)`);
      else diff(a[k], b[k], sub, out);
    }
    return;
  }
  if (!Object.is(a, b) && !(a instanceof Date)) out.push(`${path}: YAML 1.1 reads ${describeValue(a)}, YAML 1.2 reads ${describeValue(b)}`);
  else if (a instanceof Date) out.push(`${path}: YAML 1.1 reads a timestamp, YAML 1.2 reads ${describeValue(b)}`);
}

/** What a YAML 1.1 reader sees differently from a 1.2 one in `text` (parse errors included), as `<path>: ...` lines. */
export function versionDifferences(text: string): string[] {
  const [v11, v12] = (["1.1", "1.2"] as const).map((version) => parseAllDocuments(text, { version, prettyErrors: false }));
  const out: string[] = [];
  for (const [version, docs] of [["1.1", v11!], ["1.2", v12!]] as const) {
    for (const d of docs) for (const e of d.errors) out.push(`not YAML ${version}: ${e.message.split("\n")[0]}`);
  }
  if (out.length) return out;
  if (v11!.length !== v12!.length) return [`YAML 1.1 reads ${v11!.length} documents, YAML 1.2 reads ${v12!.length}`];
  v11!.forEach((d, i) => diff(d.toJS(), v12![i]!.toJS(), `[${i}]`, out));
  return out;
}

/** The ```yaml / ```yml blocks of a Markdown file, with the line each starts on. */
function yamlBlocks(markdown: string): Array<{ line: number; text: string }> {
  const blocks: Array<{ line: number; text: string }> = [];
  let current: { line: number; lines: string[] } | undefined;
  markdown.split("\n").forEach((raw, i) => {
    if (current) {
      if (/^\s*```\s*$/.test(raw)) {
        blocks.push({ line: current.line, text: current.lines.join("\n") });
        current = undefined;
      } else current.lines.push(raw);
    } else if (/^\s*```\s*ya?ml\s*$/.test(raw)) current = { line: i + 2, lines: [] };
  });
  return blocks;
}

const files = walk(root).sort();
const yamlFiles = files.filter((f) => /\.ya?ml$/.test(f));
const markdown = files.filter((f) => f.endsWith(".md") && (f === "README.md" || f.startsWith("docs/")));

describe("YAML 1.1 readers (kubectl, OLM) read our YAML as YAML 1.2 does", () => {
  it("finds what we ship: deploy/, bundle/, examples/ and the docs' YAML blocks", () => {
    for (const f of ["deploy/sandbox-operator.yaml", "deploy/crds/sandboxing.dev_sandboxconfigs.yaml", "bundle/manifests/sandboxing.dev_sandboxconfigs.yaml", "examples/sandboxconfig.yaml", "examples/pod-policy/sandboxconfig.yaml"]) {
      assert.ok(yamlFiles.includes(f), `${f} not found among ${yamlFiles.length} YAML files`);
    }
    assert.ok(markdown.some((f) => yamlBlocks(readFileSync(join(root, f), "utf8")).length > 0), "no ```yaml block in README.md or docs/");
  });

  for (const file of yamlFiles) {
    it(file, () => {
      const problems = versionDifferences(readFileSync(join(root, file), "utf8")).map((p) => `${file} ${p}`);
      assert.deepEqual(problems, [], "quote these values (a YAML 1.1 reader such as kubectl reads them as booleans, numbers or timestamps)");
    });
  }

  for (const file of markdown) {
    const blocks = yamlBlocks(readFileSync(join(root, file), "utf8"));
    if (blocks.length === 0) continue;
    it(`${file} (\`\`\`yaml blocks)`, () => {
      const problems = blocks.flatMap((b) => versionDifferences(b.text).map((p) => `${file}:${b.line} ${p}`));
      assert.deepEqual(problems, [], "quote these values (a YAML 1.1 reader such as kubectl reads them as booleans, numbers or timestamps)");
    });
  }
});

describe("the YAML 1.1/1.2 comparison", () => {
  const cases: Array<[string, string, RegExp | null]> = [
    ["an unquoted off", "spec:\n  podPolicy:\n    defaultMode: off\n", /^\[0\]\.spec\.podPolicy\.defaultMode: YAML 1\.1 reads false \(boolean\), YAML 1\.2 reads "off" \(string\)$/],
    ["an unquoted Yes in a list", "enum: [enforce, Yes]\n", /^\[0\]\.enum\[1\]: YAML 1\.1 reads true/],
    ["an octal-looking mode", "mode: 0755\n", /^\[0\]\.mode: YAML 1\.1 reads 493 \(number\), YAML 1\.2 reads 755 \(number\)$/],
    ["a sexagesimal number", "port: 1:20\n", /^\[0\]\.port: YAML 1\.1 reads 80 \(number\), YAML 1\.2 reads "1:20" \(string\)$/],
    ["a key that is a boolean in 1.1", "on: push\n", /only YAML 1\.(1|2) has this key/],
    ["a timestamp", "date: 2001-12-14\n", /^\[0\]\.date: YAML 1\.1 reads a timestamp/],
    ["the second document", "a: x\n---\nb: n\n", /^\[1\]\.b: YAML 1\.1 reads false/],
    ["quoted values", 'defaultMode: "off"\nmode: "0755"\nport: "1:20"\n"on": push\n', null],
    ["plain strings and numbers", "name: cluster\nreplicas: 2\ndrain: false\n", null],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => {
      const got = versionDifferences(text);
      if (want) assert.ok(got.some((p) => want.test(p)), `${want} not in ${JSON.stringify(got)}`);
      else assert.deepEqual(got, []);
    });
  }
});

describe("toYaml writes strings that YAML 1.1 readers read as strings", () => {
  const tricky = ["off", "On", "YES", "no", "y", "N", "true", "False", "~", "null", "Null", "0755", "0o17", "0x1F", "0b101", "1_000", "1:20", "190:20:30.15", "+12", ".5", "1e3", ".inf", "-.Inf", ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "<<", ""];
  it("quotes each and both versions read them back unchanged", () => {
    const obj = { values: tricky, keyed: Object.fromEntries(tricky.filter(Boolean).map((t) => [t, t])) };
    const text = toYaml([obj], "");
    assert.deepEqual(versionDifferences(text), []);
    for (const version of ["1.1", "1.2"] as const) assert.deepEqual(parseAllDocuments(text, { version })[0]!.toJS(), obj, `YAML ${version}`);
  });
});
