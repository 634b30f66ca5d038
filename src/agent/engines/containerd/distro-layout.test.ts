// Layout detection by table, on files in a temp host root: which distribution, which method, which
// file; and containerd 1.x's load order for imports (the last file defining the CRI section wins).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { criOwner, detectLayout } from "./distro-layout.js";

const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A host root holding `files` (host path -> text); imports in them may use ROOT for the runtime's prefix. */
function host(files: Record<string, string>, prefixed = false): { hostRoot: string; configPrefix: string } {
  const hostRoot = mkdtempSync(join(tmpdir(), "sandbox-operator-layout-"));
  roots.push(hostRoot);
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(hostRoot, p)), { recursive: true });
    writeFileSync(join(hostRoot, p), text.replaceAll("ROOT", prefixed ? hostRoot : ""));
  }
  return { hostRoot, configPrefix: prefixed ? hostRoot : "" };
}

const K3S = "/var/lib/rancher/k3s/agent/etc/containerd";
const CRI = `[plugins."io.containerd.grpc.v1.cri"]\n  enable_selinux = false\n`;

describe("detectLayout", () => {
  const cases: Array<[string, Record<string, string>, string, number, { distribution: string; method: string; target: string; unit?: string }]> = [
    ["Debian containerd 1.x: in place", { "/etc/containerd/config.toml": `version = 2\n${CRI}` }, "/etc/containerd/config.toml", 1, { distribution: "containerd", method: "in-place", target: "/etc/containerd/config.toml" }],
    ["no config.toml on 1.x: in place from defaults", {}, "/etc/containerd/config.toml", 1, { distribution: "containerd", method: "in-place", target: "/etc/containerd/config.toml" }],
    ["containerd 2.x: drop-in + import", { "/etc/containerd/config.toml": "version = 3\n" }, "/etc/containerd/config.toml", 2, { distribution: "containerd", method: "drop-in+import", target: "/etc/containerd/conf.d/50-sandbox-operator.toml" }],
    ["containerd 2.x importing a directory (EKS): a drop-in there", { "/etc/containerd/config.toml": `version = 2\nimports = ["ROOT/etc/containerd/config.d/*.toml"]\n` }, "/etc/containerd/config.toml", 2, { distribution: "containerd", method: "drop-in", target: "/etc/containerd/config.d/50-sandbox-operator.toml" }],
    ["containerd 2.x, a relative directory import resolves beside config.toml", { "/etc/containerd/config.toml": `version = 3\nimports = ["drop/*"]\n` }, "/etc/containerd/config.toml", 2, { distribution: "containerd", method: "drop-in", target: "/etc/containerd/drop/50-sandbox-operator.toml" }],
    ["containerd 1.x importing a directory (EKS): still in place (a drop-in's CRI section would replace config.toml's)", { "/etc/containerd/config.toml": `version = 2\nimports = ["ROOT/etc/containerd/config.d/*.toml"]\n${CRI}` }, "/etc/containerd/config.toml", 1, { distribution: "containerd", method: "in-place", target: "/etc/containerd/config.toml" }],
    ["k3s 2.x, no template: create config-v3.toml.tmpl", { [`${K3S}/config.toml`]: "version = 3\n" }, `${K3S}/config.toml`, 2, { distribution: "k3s", method: "template", target: `${K3S}/config-v3.toml.tmpl`, unit: "k3s" }],
    ["k3s 2.x with only config.toml.tmpl: k3s falls back to it", { [`${K3S}/config.toml`]: "version = 3\n", [`${K3S}/config.toml.tmpl`]: `{{ template "base" . }}\n` }, `${K3S}/config.toml`, 2, { distribution: "k3s", method: "template", target: `${K3S}/config.toml.tmpl` }],
    ["k3s 2.x importing config-v3.toml.d: a drop-in there", { [`${K3S}/config.toml`]: `version = 3\nimports = ["ROOT${K3S}/config-v3.toml.d/*.toml"]\n` }, `${K3S}/config.toml`, 2, { distribution: "k3s", method: "drop-in", target: `${K3S}/config-v3.toml.d/50-sandbox-operator.toml` }],
    ["k3s 1.x: config.toml.tmpl", { [`${K3S}/config.toml`]: "version = 2\n", [`${K3S}/config-v3.toml.tmpl`]: "" }, `${K3S}/config.toml`, 1, { distribution: "k3s", method: "template", target: `${K3S}/config.toml.tmpl` }],
    ["RKE2", { "/var/lib/rancher/rke2/agent/etc/containerd/config.toml": "version = 3\n" }, "/var/lib/rancher/rke2/agent/etc/containerd/config.toml", 2, { distribution: "rke2", method: "template", target: "/var/lib/rancher/rke2/agent/etc/containerd/config-v3.toml.tmpl", unit: "rke2-server" }],
    ["microk8s", { "/var/snap/microk8s/7229/args/containerd.toml": "version = 2\n" }, "/var/snap/microk8s/7229/args/containerd.toml", 1, { distribution: "microk8s", method: "template", target: "/var/snap/microk8s/7229/args/containerd-template.toml", unit: "snap.microk8s.daemon-containerd" }],
    ["k0s-managed", { "/etc/k0s/containerd.toml": "# k0s_managed=true\nversion = 2\n" }, "/etc/k0s/containerd.toml", 1, { distribution: "k0s", method: "drop-in", target: "/etc/k0s/containerd.d/50-sandbox-operator.toml", unit: "k0sworker" }],
    ["k0s config the admin took over (magic line gone): plain containerd", { "/etc/k0s/containerd.toml": `version = 2\n${CRI}` }, "/etc/k0s/containerd.toml", 1, { distribution: "containerd", method: "in-place", target: "/etc/k0s/containerd.toml" }],
  ];
  for (const [name, files, config, major, want] of cases) {
    for (const prefixed of [false, true]) {
      it(`${name}${prefixed ? " (runtime prefix)" : ""}`, () => {
        const l = detectLayout(host(files, prefixed), config, major);
        assert.deepEqual({ distribution: l.distribution, method: l.method, target: l.target, ...(want.unit ? { unit: l.unit } : {}) }, want, l.why);
      });
    }
  }
});

describe("criOwner (containerd 1.x: the file whose CRI section containerd uses)", () => {
  it("no import defines CRI: config.toml", () => {
    const m = host({ "/etc/containerd/config.toml": `version = 2\nimports = ["/etc/containerd/config.d/*.toml"]\n${CRI}`, "/etc/containerd/config.d/10-debug.toml": `[debug]\nlevel = "info"\n` });
    assert.deepEqual(criOwner(m, "/etc/containerd/config.toml"), { path: "/etc/containerd/config.toml" });
  });
  it("the last of several importing files, in containerd's order (glob sorted, then their own imports)", () => {
    const m = host({
      "/etc/containerd/config.toml": `version = 2\nimports = ["/etc/containerd/config.d/*.toml", "extra.toml"]\n${CRI}`,
      "/etc/containerd/config.d/20-b.toml": CRI,
      "/etc/containerd/config.d/10-a.toml": `imports = ["/etc/containerd/nested.toml"]\n${CRI}`,
      "/etc/containerd/extra.toml": `[debug]\nlevel = "info"\n`,
      "/etc/containerd/nested.toml": CRI,
    });
    assert.deepEqual(criOwner(m, "/etc/containerd/config.toml"), { path: "/etc/containerd/nested.toml", importedBy: "/etc/containerd/config.d/10-a.toml" });
  });
  it("an import that is missing or not TOML is skipped (containerd itself reports it)", () => {
    const m = host({ "/etc/containerd/config.toml": `imports = ["/etc/containerd/gone.toml", "/etc/containerd/bad.toml"]\n${CRI}`, "/etc/containerd/bad.toml": "[[[" });
    assert.deepEqual(criOwner(m, "/etc/containerd/config.toml"), { path: "/etc/containerd/config.toml" });
  });
});
