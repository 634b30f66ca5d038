import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { desiredHandlers, desiredNode, quantityToMiB } from "./desired-node.js";
import { probeFor } from "../../test/harness/simulated-agent.js";
import type { SandboxConfigSpec } from "../api/index.js";

const spec = (s: Partial<SandboxConfigSpec>): SandboxConfigSpec => ({ nodeSelector: {}, runtimes: { allowed: ["kata-qemu", "kata-clh", "kata-fc", "gvisor"] }, ...s });

describe("desiredHandlers", () => {
  const table: Array<[string, SandboxConfigSpec, Parameters<typeof probeFor>[0], Array<[string, string, boolean]>]> = [
    ["KVM node: general on kata-qemu, every usable backend", spec({}), ["kata-qemu", "kata-clh", "gvisor"], [["sandboxed", "kata-qemu", true], ["kata", "kata-qemu", false], ["kata-clh", "kata-clh", false], ["gvisor", "gvisor", false]]],
    ["no KVM: general falls back to gvisor", spec({}), ["gvisor"], [["sandboxed", "gvisor", true], ["gvisor", "gvisor", false]]],
    ["preferred order wins", spec({ runtimes: { allowed: ["kata-qemu", "gvisor"], preferred: ["gvisor", "kata-qemu"] } }), ["kata-qemu", "gvisor"], [["sandboxed", "gvisor", true], ["kata", "kata-qemu", false], ["gvisor", "gvisor", false]]],
    ["usable but not allowed is ignored", spec({ runtimes: { allowed: ["gvisor"] } }), ["kata-qemu", "gvisor"], [["sandboxed", "gvisor", true], ["gvisor", "gvisor", false]]],
    ["custom general name", spec({ runtimes: { allowed: ["gvisor"] }, runtimeClassName: "secure" }), ["gvisor"], [["secure", "gvisor", true], ["gvisor", "gvisor", false]]],
    ["nothing usable: no handler", spec({ runtimes: { allowed: ["kata-fc"] } }), ["gvisor"], []],
    ["variant only where its backend is usable", spec({ variants: [{ name: "big", backend: "kata-qemu", vcpus: 4 }, { name: "gv2", backend: "gvisor" }] }), ["gvisor"], [["sandboxed", "gvisor", true], ["gvisor", "gvisor", false], ["gv2", "gvisor", false]]],
  ];
  for (const [title, s, usable, want] of table) {
    it(title, () => {
      assert.deepEqual(desiredHandlers(s, probeFor(usable)).map((h) => [h.name, h.backend, h.general ?? false]), want);
    });
  }

  it("carries Kata guest sizing of a variant", () => {
    const h = desiredHandlers(spec({ variants: [{ name: "big", backend: "kata-qemu", vcpus: 4, memory: "2Gi", kernelParams: ["a=1"] }] }), probeFor(["kata-qemu"]));
    assert.deepEqual(h.find((x) => x.name === "big")?.kata, { vcpus: 4, memoryMiB: 2048, kernelParams: ["a=1"] });
  });

  it("hash depends on content only, not on key order", () => {
    const a = desiredNode(spec({ logLevel: "debug", allowedSandboxAnnotations: ["io.katacontainers.x", "dev.gvisor.y"] }), probeFor(["gvisor"]));
    const b = desiredNode(spec({ allowedSandboxAnnotations: ["dev.gvisor.y", "io.katacontainers.x"], logLevel: "debug" }), probeFor(["gvisor"]));
    const c = desiredNode(spec({ logLevel: "info" }), probeFor(["gvisor"]));
    assert.equal(a.hash, b.hash);
    assert.notEqual(a.hash, c.hash);
    assert.match(a.hash, /^[0-9a-f]{16}$/);
  });

  it("carries the verification image only when set, secrets sorted, so other nodes' hashes stay as they were", () => {
    const plain = desiredNode(spec({}), probeFor(["gvisor"]));
    assert.equal("verification" in plain, false);
    assert.equal(desiredNode(spec({ verification: {} }), probeFor(["gvisor"])).hash, plain.hash, "an empty verification block changes nothing");
    const image = "mirror.example:5000/tools/busybox@sha256:" + "b".repeat(64);
    const v = desiredNode(spec({ verification: { image, imagePullPolicy: "Always", imagePullSecrets: ["b", "a"] } }), probeFor(["gvisor"]));
    assert.deepEqual(v.verification, { image, imagePullPolicy: "Always", imagePullSecrets: ["a", "b"] });
    assert.notEqual(v.hash, plain.hash, "a new verification image re-verifies the node");
  });

  it("memory quantities", () => {
    assert.equal(quantityToMiB("4Gi"), 4096);
    assert.equal(quantityToMiB("512Mi"), 512);
    assert.equal(quantityToMiB("1G"), 954);
    assert.equal(quantityToMiB("2e9"), 1908);
    assert.equal(quantityToMiB("1.5Gi"), 1536);
    assert.equal(quantityToMiB("100m"), 1, "a tiny quantity still gives the guest 1 MiB rather than 0");
  });
});
