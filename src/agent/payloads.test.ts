import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gvisorPayloadFor, payloadHostDir, payloadVersion } from "./payloads.js";
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

  it("containerd 1.6 keeps host gVisor (the payload's shim needs 1.7+); 1.7, 2.x and CRI-O use the payload", () => {
    assert.equal(payloadShimUnsupported({ kind: "containerd", version: "1.6.20~ds1", source: "" }), true);
    for (const version of ["1.7.27", "2.4.2"]) assert.equal(payloadShimUnsupported({ kind: "containerd", version, source: "" }), false, version);
    assert.equal(payloadShimUnsupported({ kind: "crio", version: "1.34.0", source: "" }), false);
  });
});

describe("SandboxConfig spec.payloads", () => {
  const cfg = (payloads: unknown) => ({ apiVersion: "sandboxing.dev/v1alpha1", kind: "SandboxConfig", metadata: { name: "cluster" }, spec: { nodeSelector: {}, runtimes: { allowed: ["gvisor"] }, payloads } });
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
