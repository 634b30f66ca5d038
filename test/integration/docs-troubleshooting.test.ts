// Troubleshooting coverage: every condition reason the code can emit (found by scanning
// src/controller, src/agent, src/openshift and the CLI's status view) has a row in
// docs/troubleshooting.md. The scanner itself is checked on samples, so the test can fail.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { repoRoot } from "../../src/manifests/image-lock.js";
import { reasonsInCode, reasonsInDocs, reasonsInSource } from "../harness/docs-reasons.js";

const root = repoRoot();

describe("docs/troubleshooting.md covers every reason in the code", () => {
  it("has a row for every reason the code can emit", () => {
    const code = reasonsInCode(root);
    const docs = reasonsInDocs(readFileSync(`${root}/docs/troubleshooting.md`, "utf8"));
    // A floor, so a scanner that finds nothing cannot pass: the controller and agent alone set more.
    assert.ok(code.size >= 40, `the scanner found only ${code.size} reasons`);
    for (const r of ["AllNodesReady", "VerificationFailed", "MachineConfigDegraded", "WaitingForAgent"]) assert.ok(code.has(r), `scanner missed ${r}`);
    const missing = [...code].filter(([r]) => !docs.has(r)).map(([r, at]) => `${r} (${at.join(", ")})`);
    assert.deepEqual(missing, [], "add a row (reason -> meaning -> what to do) to docs/troubleshooting.md for each");
  });
});

describe("the reason scanner", () => {
  it("finds reasons in the forms the code uses", () => {
    const src = [
      `return { state: "Degraded", reason: f.x === "Degraded" ? "MachineConfigDegraded" : "MachineConfigUnreconcilable", message: "m" };`,
      `{ type: "Degraded", status: node.state === "Degraded" ? "True" : "False", reason: node.state === "Degraded" ? reason : "AsExpected", message };`,
      `reason: "Verified" | "VerificationFailed" | "ApplyFailed";`,
      `if (n.summary.reason === "WaitingForProbe") x();`,
      `function f(reason = "Uninstalling") {}`,
      `const summary = { name, reason: sn`,
      `  ? "WaitingForProbe"`,
      `  : "Creating", message: "creating" };`,
      `report({ phase: "Failed", reason: "RuntimeNotFound", message: "Not" + "Reason" });`,
      `const { state: "Nope" } = x; // no reason key before the literal`,
    ].join("\n");
    const found = [...new Set(reasonsInSource(src).map((h) => h.reason))].sort();
    assert.deepEqual(found, ["ApplyFailed", "AsExpected", "Creating", "MachineConfigDegraded", "MachineConfigUnreconcilable", "RuntimeNotFound", "Uninstalling", "VerificationFailed", "Verified", "WaitingForProbe"]);
  });

  it("reads documented reasons from table rows only, and reports an undocumented one", () => {
    const md = "| Ready=True | `AllNodesReady` | ok | — |\n\nProse mentioning `NoNodeReady` is not an entry.\n| node | `Applying` / `Verified` | … | … |\n";
    const docs = reasonsInDocs(md);
    assert.deepEqual([...docs].sort(), ["AllNodesReady", "Applying", "Verified"]);
    const code = reasonsInSource(`x = { reason: cond ? "AllNodesReady" : "NoNodeReady" };`);
    assert.deepEqual(code.filter((h) => !docs.has(h.reason)).map((h) => h.reason), ["NoNodeReady"]);
  });
});
