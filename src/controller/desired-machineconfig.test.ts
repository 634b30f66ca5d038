import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import type { SandboxConfigSpec } from "../api/index.js";
import { renderCrioDropIn } from "../render/node/crio-dropin.js";
import { defaultLayout, runscConfigPath } from "../render/node/layout.js";
import { renderRunscConfig } from "../render/node/runsc-config.js";
import { machineConfigContent, machineConfigHandlers, RHCOS_LAYOUT } from "./desired-machineconfig.js";

const spec = (allowed: SandboxConfigSpec["runtimes"]["allowed"], preferred?: SandboxConfigSpec["runtimes"]["preferred"]): SandboxConfigSpec =>
  ({ nodeSelector: {}, runtimes: { allowed, ...(preferred ? { preferred } : {}) } }) as SandboxConfigSpec;
type Runtimes = { crio: { runtime: { runtimes: Record<string, Record<string, unknown>> } } };

describe("machineConfigContent", () => {
  it("by default: Kata (QEMU) from the RHCOS extension only, under /etc, no runsc.toml even when gVisor is allowed", () => {
    const c = machineConfigContent(spec(["kata-qemu", "gvisor"]));
    assert.deepEqual(machineConfigHandlers(spec(["kata-qemu", "gvisor"])).map((h) => `${h.name}:${h.backend}`), ["sandboxed:kata-qemu", "kata:kata-qemu"]);
    assert.equal(c.runscConfig, undefined);
    assert.deepEqual(c.kataFiles.map((f) => f.path), ["/etc/sandbox-operator/etc/kata/configuration-kata.toml", "/etc/sandbox-operator/etc/kata/configuration-sandboxed.toml"]);
    const rt = (parse(c.crioDropIn) as unknown as Runtimes).crio.runtime.runtimes;
    assert.equal(rt.sandboxed!.runtime_path, "/usr/bin/containerd-shim-kata-v2");
  });
  it("with gVisor among the pool's backends: the gVisor handlers and the runsc.toml they name, from the shared renderers", () => {
    const backends = ["kata-qemu", "gvisor"] as const;
    const s = spec(["kata-qemu", "gvisor"], ["gvisor"]);
    const c = machineConfigContent(s, { backends });
    const handlers = machineConfigHandlers(s, backends);
    assert.deepEqual(handlers.map((h) => `${h.name}:${h.backend}`), ["sandboxed:gvisor", "kata:kata-qemu", "gvisor:gvisor"]);
    assert.deepEqual(c.runscConfig, { path: "/etc/sandbox-operator/etc/runsc.toml", content: renderRunscConfig(RHCOS_LAYOUT) });
    assert.equal(c.crioDropIn, renderCrioDropIn(handlers, { layout: RHCOS_LAYOUT, allowedAnnotations: [] }));
    const rt = (parse(c.crioDropIn) as unknown as Runtimes).crio.runtime.runtimes;
    assert.equal(rt.gvisor!.runtime_config_path, c.runscConfig!.path);
    assert.equal(rt.gvisor!.runtime_path, "/etc/sandbox-operator/bin/containerd-shim-runsc-v1");
  });
  it("a runtime layout apart from the node layout: paths from the one, contents name the other (as the agent's configPrefix)", () => {
    const runtimeLayout = defaultLayout({ installDir: "/host/etc/sandbox-operator", kataDir: "/host/usr", runscFlags: { network: "none" } });
    const c = machineConfigContent(spec(["kata-qemu", "gvisor"]), { backends: ["kata-qemu", "gvisor"], runtimeLayout });
    assert.equal(c.runscConfig!.path, runscConfigPath(RHCOS_LAYOUT));
    assert.equal(c.runscConfig!.content, renderRunscConfig(runtimeLayout));
    assert.ok(c.kataFiles.every((f) => f.path.startsWith("/etc/sandbox-operator/etc/kata/")));
    assert.ok(c.kataFiles.every((f) => f.content.includes("/host/usr/") && !/"\/usr\//.test(f.content)), "Kata files name the runtime's paths");
    assert.match(c.crioDropIn, /runtime_config_path = "\/host\/etc\/sandbox-operator\/etc\/runsc.toml"/);
  });
  it("gVisor only: no Kata files", () => {
    const c = machineConfigContent(spec(["gvisor"]), { backends: ["gvisor"] });
    assert.deepEqual(c.kataFiles, []);
    assert.ok(c.runscConfig);
  });
});
