// The committed OLM bundle passes operator-framework's own bundle validation (operator-verify
// from github.com/operator-framework/api), and that validator really reports broken bundles.
/* eslint-disable @typescript-eslint/no-explicit-any -- edits generated YAML documents */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { ensureBinary } from "../harness/binaries.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BUNDLE = join(root, "bundle");
const CSV = "manifests/sandbox-operator.clusterserviceversion.yaml";
// Printed whenever --operatorhub_validate is given: about the validator itself, not our bundle.
const DEPRECATION = /The \\?"operatorhub\\?" validator is deprecated/;

interface Finding {
  level: string;
  msg: string;
}

describe("OLM bundle validated by operator-framework/api v0.45.0 (operator-verify)", () => {
  let verify: string;
  let tmp: string;
  before(async () => {
    verify = await ensureBinary("operator-verify");
    tmp = mkdtempSync(join(tmpdir(), "sandbox-bundle-"));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  /** operator-verify logs findings with logrus and exits 0 even with errors: parse every line. */
  const run = (dir: string, strict = false): { code: number | null; findings: Finding[]; out: string } => {
    const args = ["manifests", ...(strict ? ["--operatorhub_validate", "--object_validate"] : []), dir];
    const r = spawnSync(verify, args, { encoding: "utf8" });
    if (r.error) throw r.error;
    const out = `${r.stdout}${r.stderr}`;
    const findings: Finding[] = [];
    for (const line of out.split("\n").filter((l) => l.trim())) {
      const m = /level=(\w+) msg="((?:[^"\\]|\\.)*)"/.exec(line);
      assert.ok(m, `unparsed validator output line: ${line}`);
      findings.push({ level: m[1]!, msg: m[2]! });
    }
    return { code: r.status, findings, out };
  };
  const problems = (r: ReturnType<typeof run>) => r.findings.filter((f) => !DEPRECATION.test(f.msg));

  it("the committed bundle has no error and no warning (default validators)", () => {
    const r = run(BUNDLE);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(problems(r), []);
  });

  it("the committed bundle has no error and no warning (OperatorHub and object validators)", () => {
    const r = run(BUNDLE, true);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(problems(r), []);
    assert.ok(r.findings.some((f) => DEPRECATION.test(f.msg)), "the strict validators ran");
  });

  const broken = (name: string, edit: (csv: Record<string, any>) => void): string => {
    const dir = join(tmp, name);
    cpSync(BUNDLE, dir, { recursive: true });
    const csv = parse(readFileSync(join(dir, CSV), "utf8"));
    edit(csv);
    writeFileSync(join(dir, CSV), stringify(csv));
    return dir;
  };
  const cases: Array<[string, (csv: Record<string, any>) => void, RegExp]> = [
    ["no install modes", (csv) => delete csv.spec.installModes, /install modes not found/],
    ["an example of a kind the bundle does not own", (csv) => (csv.metadata.annotations["alm-examples"] = JSON.stringify([{ apiVersion: "example.com/v1", kind: "Other", metadata: { name: "x" } }])), /example must have a provided API/],
    ["an owned CRD whose version the bundle lacks", (csv) => (csv.spec.customresourcedefinitions.owned[0].version = "v9"), /owned CRD .*v9, Kind=SandboxConfig.* not found in bundle/],
    ["a maintainer without e-mail (OperatorHub rules)", (csv) => (csv.spec.maintainers = [{ name: "x" }]), /Maintainers elements should contain both name and email/],
  ];
  for (const [title, edit, expected] of cases) {
    it(`reports an error for ${title}`, () => {
      const r = run(broken(title.replace(/\W+/g, "-"), edit), true);
      const errors = problems(r).filter((f) => f.level === "error" || f.level === "fatal");
      assert.ok(errors.some((f) => expected.test(f.msg)), `expected an error matching ${expected}, got:\n${r.out}`);
    });
  }
});
