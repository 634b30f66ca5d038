import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { SandboxConfig } from "../api/index.js";
import { machineConfigBackends, machineConfigRuntimeClasses } from "./render-runtimeclasses.js";

const config = (spec: Partial<SandboxConfig["spec"]>): SandboxConfig => ({
  apiVersion: "sandboxing.dev/v1alpha1",
  kind: "SandboxConfig",
  metadata: { name: "cluster" },
  spec: { nodeSelector: {}, runtimes: { allowed: ["kata-qemu", "gvisor"] }, ...spec },
});

describe("machineConfigRuntimeClasses (the shared builder restricted to the MachineConfig path)", () => {
  it("publishes the general class and kata only: the RHCOS extension ships Kata with QEMU", () => {
    const rcs = machineConfigRuntimeClasses(config({ tolerations: [{ key: "sandbox", operator: "Exists", effect: "NoSchedule" }] }));
    assert.deepEqual(rcs.map((r) => [r.metadata.name, r.handler, r.scheduling?.nodeSelector]), [
      ["sandboxed", "sandboxed", { "sandboxing.dev/runtime.sandboxed": "true" }],
      ["kata", "kata", { "sandboxing.dev/runtime.kata": "true" }],
    ]);
    assert.deepEqual(rcs[0]!.overhead.podFixed, { memory: "320Mi", cpu: "250m" }, "the same documented default as the DaemonSet path");
    assert.equal(rcs[0]!.scheduling?.tolerations?.length, 1);
    assert.equal(rcs[0]!.metadata.labels["sandboxing.dev/install-method"], "MachineConfig");
    assert.equal(rcs[0]!.metadata.labels["sandboxing.dev/config"], "cluster");
  });
  it("applies overhead overrides and Kata variants, skips gVisor variants", () => {
    const rcs = machineConfigRuntimeClasses(config({ runtimeClassName: "secure", overhead: { "kata-qemu": { memory: "512Mi" } }, variants: [{ name: "kata-big", backend: "kata-qemu", vcpus: 4, overhead: { cpu: "1" } }, { name: "gv", backend: "gvisor" }] }));
    assert.deepEqual(rcs.map((r) => `${r.metadata.name}=${r.overhead.podFixed.cpu}/${r.overhead.podFixed.memory}`), ["secure=250m/512Mi", "kata=250m/512Mi", "kata-big=1/518Mi"], "kata-big: 3 extra vCPUs add 2Mi each");
  });
  it("has nothing to publish when kata-qemu is not allowed", () => {
    assert.deepEqual(machineConfigBackends(config({ runtimes: { allowed: ["gvisor"] } })), []);
    assert.deepEqual(machineConfigRuntimeClasses(config({ runtimes: { allowed: ["gvisor"] } })), []);
  });
});
