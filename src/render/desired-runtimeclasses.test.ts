// RuntimeClass overheads that follow the rendered VM size, and a VFIO variant's scheduling onto
// the nodes with the device (docs/controller.md explains the numbers).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { SandboxConfigSpec, Variant } from "../api/index.js";
import { DEFAULT_OVERHEAD, desiredRuntimeClasses, runtimeLabel, variantOverhead } from "./desired-runtimeclasses.js";

const spec = (variants: Variant[], over: Partial<SandboxConfigSpec> = {}) =>
  ({ nodeSelector: {}, runtimes: { allowed: ["kata-qemu", "kata-clh", "kata-fc", "gvisor"] }, variants, ...over }) as SandboxConfigSpec;
const byName = (s: SandboxConfigSpec) => Object.fromEntries(desiredRuntimeClasses(s).map((rc) => [rc.metadata.name, rc]));

describe("overhead.podFixed per backend and VM size", () => {
  it("backend classes carry the peers' figures (kata-deploy qemu 320Mi, clh/fc 130Mi, 250m); the general class the largest", () => {
    const rc = byName(spec([]));
    assert.deepEqual(rc.kata!.overhead.podFixed, { memory: "320Mi", cpu: "250m" });
    assert.deepEqual(rc["kata-clh"]!.overhead.podFixed, { memory: "130Mi", cpu: "250m" });
    assert.deepEqual(rc["kata-fc"]!.overhead.podFixed, { memory: "130Mi", cpu: "250m" });
    assert.deepEqual(rc.sandboxed!.overhead.podFixed, { memory: "320Mi", cpu: "250m" });
  });
  const cases: Array<[string, Variant, string]> = [
    ["Kata's default size: the backend's figure", { name: "v", backend: "kata-qemu" }, "320Mi"],
    ["a smaller VM never goes below it", { name: "v", backend: "kata-fc", memory: "512Mi" }, "130Mi"],
    ["8 GiB: + memmap of the extra 6 GiB (96Mi)", { name: "v", backend: "kata-qemu", memory: "8Gi" }, "416Mi"],
    ["4 vCPUs: + 2Mi per extra vCPU", { name: "v", backend: "kata-clh", vcpus: 4 }, "136Mi"],
    ["8 GiB and 4 vCPUs on clh", { name: "v", backend: "kata-clh", vcpus: 4, memory: "8Gi" }, "232Mi"],
    ["VFIO pins the whole 2 GiB boot memory", { name: "v", backend: "kata-qemu", vfio: { plug: "cold-plug", nodeSelector: { d: "1" } } }, "2368Mi"],
  ];
  for (const [title, v, memory] of cases) {
    it(title, () => {
      assert.equal(variantOverhead(DEFAULT_OVERHEAD[v.backend], v).memory, memory);
      const rc = byName(spec([v])).v!;
      assert.deepEqual(rc.overhead.podFixed, { memory, cpu: "250m" });
    });
  }
  it("a larger VM gets a larger overhead than its backend's class, monotonically", () => {
    const sizes = ["2Gi", "4Gi", "8Gi", "16Gi"].map((memory) => variantOverhead(DEFAULT_OVERHEAD["kata-qemu"], { name: "v", backend: "kata-qemu", memory }).memory);
    const mi = sizes.map((s) => Number(s.replace("Mi", "")));
    for (let i = 1; i < mi.length; i++) assert.ok(mi[i]! > mi[i - 1]!, sizes.join(" < "));
  });
  it("builds on the admin's backend overhead, and the variant's own overhead wins", () => {
    const s = spec([{ name: "big", backend: "kata-qemu", memory: "8Gi" }, { name: "pinned", backend: "kata-qemu", memory: "8Gi", overhead: { memory: "1Gi" } }], { overhead: { "kata-qemu": { memory: "350Mi" } } });
    const rc = byName(s);
    assert.equal(rc.kata!.overhead.podFixed.memory, "350Mi", "OpenShift sandboxed containers' figure, set by the admin");
    assert.equal(rc.big!.overhead.podFixed.memory, "446Mi");
    assert.deepEqual(rc.pinned!.overhead.podFixed, { memory: "1Gi", cpu: "250m" });
  });
  it("the general class takes the largest backend overhead in any quantity notation (exponents, P/E suffixes, decimals)", () => {
    const cases: Array<[Record<string, string>, Record<string, string>, { memory: string; cpu: string }]> = [
      [{ memory: "1e9" }, { memory: "500Mi" }, { memory: "1e9", cpu: "250m" }],
      [{ memory: "0.5Gi", cpu: "1" }, { memory: "600Mi", cpu: "1500m" }, { memory: "600Mi", cpu: "1500m" }],
      [{ memory: "1Pi" }, { memory: "2E" }, { memory: "2E", cpu: "250m" }],
      [{ memory: "3E6", cpu: "2e-1" }, { memory: "2M", cpu: "0.3" }, { memory: "3E6", cpu: "0.3" }],
    ];
    for (const [qemu, fc, want] of cases) {
      const rc = byName({ ...spec([]), runtimes: { allowed: ["kata-qemu", "kata-fc"] }, overhead: { "kata-qemu": qemu, "kata-fc": fc } } as SandboxConfigSpec);
      assert.deepEqual(rc.sandboxed!.overhead.podFixed, want, JSON.stringify({ qemu, fc }));
    }
  });
});

describe("a VFIO passthrough variant schedules onto the nodes with the device", () => {
  it("its nodeSelector joins the verified-node label; other classes are unchanged", () => {
    const rc = byName(spec([{ name: "gpu", backend: "kata-qemu", vfio: { plug: "cold-plug", port: "root-port", nodeSelector: { "feature.node.kubernetes.io/pci-10de.present": "true" } } }]));
    assert.deepEqual(rc.gpu!.scheduling!.nodeSelector, { "feature.node.kubernetes.io/pci-10de.present": "true", [runtimeLabel("gpu")]: "true" });
    assert.deepEqual(rc.kata!.scheduling!.nodeSelector, { [runtimeLabel("kata")]: "true" });
  });
});
