import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import type { CriClient } from "./cri/client.js";
import { gvisorPayloadFor, handlersOf, kataPayloadFor, payloadHostDir, PayloadStore, payloadVersion, withPayloadLayout } from "./payloads.js";
import { desiredPayloads } from "./payload-steps.js";
import { defaultLayout } from "../render/node/layout.js";
import type { HostInventory } from "./probe/probe.js";
import { payloadShimUnsupported } from "./probe/probe.js";
import { validateSandboxConfig, ValidationError } from "../api/validate.js";
import { desiredInputs, desiredNode } from "../render/desired-node.js";
import { probeFor } from "../../test/harness/simulated-agent.js";

const HEX = "a".repeat(64);
const REF = `localhost/sandbox-operator-gvisor@sha256:${HEX}`;
const gv = { hash: "h", handlers: [{ name: "gvisor", backend: "gvisor" as const }] };

describe("payload versions", () => {
  it("are keyed by the pinned digest, and an unpinned reference is refused naming the fix", () => {
    assert.equal(payloadVersion(REF), HEX);
    assert.equal(payloadHostDir("gvisor", HEX), `/opt/sandbox-operator/gvisor/${HEX}`);
    assert.throws(() => payloadVersion("localhost/sandbox-operator-gvisor:0.1.0"), /not pinned by digest: write it as <repository>@sha256:<64 hex> \(SandboxConfig spec.payloads/);
  });

  it("desired's spec.payloads.gvisor wins over the agent's default; no gVisor handler, no payload", () => {
    const other = `registry.example/mirror/gvisor@sha256:${"b".repeat(64)}`;
    assert.deepEqual(gvisorPayloadFor(gv, REF), { backend: "gvisor", image: REF });
    assert.deepEqual(gvisorPayloadFor({ ...gv, payloads: { gvisor: { image: other, imagePullPolicy: "Never" } } }, REF), { backend: "gvisor", image: other, imagePullPolicy: "Never" });
    assert.equal(gvisorPayloadFor(gv, undefined), undefined);
    assert.equal(gvisorPayloadFor({ hash: "h", handlers: [{ name: "kata", backend: "kata-qemu" }] }, REF), undefined);
  });

  it("the Kata payload comes only from desired (no default), for every Kata backend; containerd 1.6 still gets it", () => {
    const kata = `mirror.local:5000/sandbox-operator-kata@sha256:${"c".repeat(64)}`;
    const d = { hash: "h", handlers: [...gv.handlers, { name: "kata", backend: "kata-qemu" as const }, { name: "kata-fc", backend: "kata-fc" as const }], payloads: { kata: { image: kata } } };
    assert.deepEqual(kataPayloadFor(d), { backend: "kata", image: kata });
    assert.equal(kataPayloadFor(gv), undefined);
    assert.deepEqual(handlersOf(d, "kata"), ["kata", "kata-fc"]);
    assert.deepEqual(handlersOf(d, "gvisor"), ["gvisor"]);
    const old = { kind: "containerd" as const, version: "1.6.20~ds1", source: "" };
    assert.deepEqual(desiredPayloads(d, old, REF).map((p) => p.backend), ["kata"], "1.6 runs Kata's shim; only gVisor's payload shim needs 1.7+");
    assert.deepEqual(desiredPayloads(d, { ...old, version: "2.4.2" }, REF).map((p) => p.backend), ["gvisor", "kata"]);
  });

  it("an installed Kata version is the whole Kata prefix: shim, hypervisors, kernel and image all come from it", () => {
    const inv = { layout: defaultLayout(), shipsGvisor: true } as HostInventory;
    const dir = payloadHostDir("kata", HEX);
    const k = withPayloadLayout(inv, "kata", dir);
    assert.equal(k.layout.kataDir, dir);
    assert.equal(k.layout.kataShim, `${dir}/bin/containerd-shim-kata-v2`);
    assert.equal(k.shipsGvisor, true, "gVisor's source is not Kata's business");
    assert.equal(k.layout.runsc, inv.layout.runsc);
  });

  it("containerd 1.6 keeps host gVisor (the payload's shim needs 1.7+); 1.7, 2.x and CRI-O use the payload", () => {
    assert.equal(payloadShimUnsupported({ kind: "containerd", version: "1.6.20~ds1", source: "" }), true);
    for (const version of ["1.7.27", "2.4.2"]) assert.equal(payloadShimUnsupported({ kind: "containerd", version, source: "" }), false, version);
    assert.equal(payloadShimUnsupported({ kind: "crio", version: "1.34.0", source: "" }), false);
  });
});

describe("SandboxConfig spec.payloads", () => {
  const cfg = (payloads: unknown) => ({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor"] }, payloads } });
  it("takes a pinned Kata payload and refuses a tag-only one naming spec.payloads.kata.image", () => {
    assert.equal(validateSandboxConfig(cfg({ kata: { image: `mirror.local:5000/sandbox-operator-kata@sha256:${HEX}`, imagePullPolicy: "Never" } })).spec.payloads?.kata?.imagePullPolicy, "Never");
    assert.throws(() => validateSandboxConfig(cfg({ kata: { image: "mirror.local:5000/sandbox-operator-kata:4.1.0" } })), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.errors.map((x) => x.field), ["spec.payloads.kata.image"]);
      return true;
    });
  });

  it("takes a pinned gVisor payload and refuses a tag-only reference and an unknown pull policy by field", () => {
    assert.equal(validateSandboxConfig(cfg({ gvisor: { image: `mirror.local:5000/sandbox-operator-gvisor@sha256:${HEX}` } })).spec.payloads?.gvisor?.image.endsWith(HEX), true);
    assert.throws(() => validateSandboxConfig(cfg({ gvisor: { image: "mirror.local:5000/sandbox-operator-gvisor:0.1.0", imagePullPolicy: "Always" } })), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      const fields = e.errors.map((x) => x.field);
      for (const f of ["spec.payloads.gvisor.image", "spec.payloads.gvisor.imagePullPolicy"]) assert.ok(fields.includes(f), `${f} in ${fields.join()}`);
      return true;
    });
  });
});

describe("spec.payloads flows into SandboxNode desired", () => {
  const spec = { nodeSelector: {}, runtimes: { allowed: ["gvisor" as const] } };
  it("as desired.payloads and fromConfig.payloads; a config without it keeps its hash", () => {
    const image = `localhost/sandbox-operator-gvisor@sha256:${HEX}`;
    const without = desiredNode(spec, probeFor(["gvisor"]));
    const withIt = desiredNode({ ...spec, payloads: { gvisor: { image } } }, probeFor(["gvisor"]));
    assert.equal("payloads" in without, false);
    assert.deepEqual(withIt.payloads, { gvisor: { image } });
    assert.notEqual(withIt.hash, without.hash, "a payload change rolls out like any other change");
    assert.deepEqual(desiredInputs({ ...spec, payloads: { gvisor: { image, imagePullPolicy: "Never" } } }).payloads, { gvisor: { image, imagePullPolicy: "Never" } });
    assert.deepEqual(desiredNode(desiredInputs({ ...spec, payloads: { gvisor: { image } } }), probeFor(["gvisor"])), withIt, "the agent's fromConfig path computes the same desired");
  });
});

describe("spec.payloads.kata flows into desired while a Kata backend is allowed", () => {
  const kata = { image: `localhost/sandbox-operator-kata@sha256:${HEX}` };
  it("to every node, Kata runnable there or not; a gVisor-only config leaves it out", () => {
    const both = { nodeSelector: {}, runtimes: { allowed: ["gvisor" as const, "kata-clh" as const] }, payloads: { kata } };
    const here = desiredNode(both, probeFor(["gvisor"]));
    assert.deepEqual(here.payloads, { kata });
    assert.deepEqual(here.handlers.map((h) => h.backend), ["gvisor", "gvisor"], "no Kata handler where the probe says Kata cannot run");
    assert.deepEqual(desiredInputs(both).payloads, { kata });
    assert.equal("payloads" in desiredNode({ ...both, runtimes: { allowed: ["gvisor"] } }, probeFor(["gvisor"])), false, "not installed where no Kata backend is allowed");
  });
});

describe("Kata payload versions in use", () => {
  it("a retired Kata version stays while a ready sandbox of any Kata handler started before the switch runs, and goes after", async () => {
    const root = mkdtempSync(join(tmpdir(), "sandbox-operator-payload-unit-"));
    try {
      const [v1, v2] = ["1".repeat(64), "2".repeat(64)];
      for (const v of [v1, v2]) mkdirSync(join(root, payloadHostDir("kata", v), "bin"), { recursive: true });
      const stateDir = join(root, "state");
      mkdirSync(stateDir);
      const at = new Date(Date.now() - 60_000).toISOString();
      const image = (v: string) => `localhost/sandbox-operator-kata@sha256:${v}`;
      writeFileSync(join(stateDir, "payloads.json"), JSON.stringify({ versions: [{ backend: "kata", version: v1, image: image(v1), installedAt: at, currentSince: at }, { backend: "kata", version: v2, image: image(v2), installedAt: at }], handlers: { kata: ["kata"] } }));
      const store = new PayloadStore({ hostRoot: root, runtimePath: (p) => p, stateDir, log: pino({ level: "silent" }) });
      store.switched("kata", v2, ["kata", "kata-clh"]);
      assert.equal(store.current("kata")?.version, v2);
      let sandboxes = [{ id: "p1", state: "SANDBOX_READY", runtime_handler: "kata-clh", created_at: String(Date.parse(at) * 1e6), metadata: { namespace: "team", name: "vm-pod" } }];
      const cri = { listPodSandbox: async () => sandboxes, sandboxHandler: async (p: { runtime_handler: string }) => p.runtime_handler } as unknown as CriClient;
      const kept = await store.collect(cri);
      assert.deepEqual(kept.removed, []);
      assert.deepEqual(kept.inUse, [`${payloadHostDir("kata", v1)} (used by sandbox team/vm-pod)`]);
      assert.ok(existsSync(join(root, payloadHostDir("kata", v1))));
      sandboxes = [];
      assert.deepEqual((await store.collect(cri)).removed, [payloadHostDir("kata", v1)]);
      assert.equal(existsSync(join(root, payloadHostDir("kata", v1))), false);
      assert.deepEqual(store.installed(), [payloadHostDir("kata", v2)]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
