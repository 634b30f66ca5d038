// microk8s, k0s and EKS-style layouts, and hand-written TOML (comments, literal keys, proxy_plugins,
// child tables before parents), each on a real containerd; plus containerd 1.x's imports trap: an
// imported file that defines the CRI section replaces config.toml's, so our runtimes go into it.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { ENV_KEYS, runShape, standIn, type Ctx } from "./distro-helpers.js";

const MICROK8S = "/var/snap/microk8s/7229";
const indent = (s: string, by: string) => s.trimEnd().split("\n").map((l) => by + l.trim()).join("\n");

runShape({
  name: "microk8s (containerd 1.x, Debian's 1.6): args/containerd-template.toml rendered at each start",
  version: "1.6",
  config: `${MICROK8S}/args/containerd.toml`,
  socket: "/var/snap/microk8s/common/run/containerd.sock",
  setup(ctx: Ctx) {
    ctx.write(
      `${MICROK8S}/args/containerd-template.toml`,
      [
        `# Use config version 2 to enable new configuration fields.`,
        `version = 2`,
        `oom_score = 0`,
        ``,
        `[plugins."io.containerd.internal.v1.opt"]`,
        `  path = "${ctx.opt}"`,
        ``,
        `# The 'plugins."io.containerd.grpc.v1.cri"' table contains all of the server options.`,
        `[plugins."io.containerd.grpc.v1.cri"]`,
        `  stream_server_address = "127.0.0.1"`,
        `  stream_server_port = "0"`,
        indent(ENV_KEYS, "  "),
        `  [plugins."io.containerd.grpc.v1.cri".containerd]`,
        `    snapshotter = "overlayfs"`,
        `    default_runtime_name = "runc"`,
        `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
        `      runtime_type = "io.containerd.runc.v2"`,
        `  [plugins."io.containerd.grpc.v1.cri".cni]`,
        `    bin_dir = "\${SNAP_DATA}/opt/cni/bin"`,
        `    conf_dir = "\${SNAP_DATA}/args/cni-network"`,
        `  [plugins."io.containerd.grpc.v1.cri".registry]`,
        `    config_path = "\${SNAP_DATA}/args/certs.d"`,
        ``,
      ].join("\n"),
    );
  },
  generate: (ctx) => standIn("microk8s", ctx.at(`${MICROK8S}/args`), ctx.at(MICROK8S), ctx.at("/var/snap/microk8s/common")),
  layout: { distribution: "microk8s", method: "template", target: `${MICROK8S}/args/containerd-template.toml`, why: /microk8s renders .*containerd\.toml from .*containerd-template\.toml each time its containerd starts/ },
  applied(ctx) {
    const rendered = readFileSync(ctx.at(`${MICROK8S}/args/containerd.toml`), "utf8");
    assert.match(rendered, /runtimes\.sandboxed\]/, "the rendered containerd.toml carries our runtimes");
    assert.match(rendered, new RegExp(`config_path = "${ctx.at(MICROK8S)}/args/certs.d"`), "microk8s's variables were substituted");
  },
});

/** k0s: its own CRI settings (written by k0s to /run/k0s/containerd-cri.toml with CRI drop-ins merged in) and an admin's non-CRI drop-in. */
function k0sShape(version: "1.6" | "2"): Parameters<typeof runShape>[0] {
  const v3 = version === "2";
  const cri = v3 ? `'io.containerd.cri.v1.runtime'` : `"io.containerd.grpc.v1.cri"`;
  return {
    name: `k0s (containerd ${v3 ? "2.x" : "1.x, Debian's 1.6"}): k0s-managed containerd.toml, our drop-in in containerd.d merged by k0s`,
    version,
    config: "/etc/k0s/containerd.toml",
    socket: "/run/k0s/containerd.sock",
    setup(ctx) {
      ctx.write("/stand-in/k0s-cri.toml", [`[plugins.'io.containerd.internal.v1.opt']`, `path = "${ctx.opt}"`, `[plugins.${cri}]`, ENV_KEYS.trimEnd(), `[plugins.${cri}.containerd.runtimes.runc]`, `runtime_type = "io.containerd.runc.v2"`, ``].join("\n"));
      ctx.write("/etc/k0s/containerd.d/10-debug.toml", `version = ${v3 ? 3 : 2}\n[debug]\n  level = "info"\n`);
    },
    generate: (ctx) => standIn("k0s", ctx.at("/etc/k0s"), ctx.at("/run/k0s"), ctx.at("/stand-in/k0s-cri.toml"), v3 ? "3" : "2"),
    layout: { distribution: "k0s", method: "drop-in", target: "/etc/k0s/containerd.d/50-sandbox-operator.toml", why: /k0s manages .* \(k0s_managed=true\) and loads drop-ins from \/etc\/k0s\/containerd\.d/ },
    applied(ctx) {
      assert.match(readFileSync(ctx.at("/run/k0s/containerd-cri.toml"), "utf8"), /sandboxed/, "k0s merged our CRI drop-in into its CRI config");
      assert.match(readFileSync(ctx.at("/etc/k0s/containerd.toml"), "utf8"), /^# k0s_managed=true/, "containerd.toml stays k0s-managed");
      assert.match(readFileSync(ctx.at("/etc/k0s/containerd.d/50-sandbox-operator.toml"), "utf8"), new RegExp(`^version = ${v3 ? 3 : 2}$`, "m"));
    },
  };
}
runShape(k0sShape("2"));
runShape(k0sShape("1.6"));

/** EKS-style /etc/containerd/config.toml (containerd 1.7 and later): imports config.d/*.toml, runc with SystemdCgroup = true. */
function eksConfig(ctx: Ctx, version: 2 | 3): string {
  const cri = version === 3 ? `'io.containerd.cri.v1.runtime'` : `"io.containerd.grpc.v1.cri"`;
  return [
    `version = ${version}`,
    `imports = ["${ctx.at("/etc/containerd/config.d")}/*.toml"]`,
    ``,
    `[plugins."io.containerd.internal.v1.opt"]`,
    `path = "${ctx.opt}"`,
    ``,
    `[plugins.${cri}]`,
    ENV_KEYS.trimEnd(),
    ``,
    `[plugins.${cri}.containerd]`,
    `default_runtime_name = "runc"`,
    `discard_unpacked_layers = true`,
    ``,
    `[plugins.${cri}.containerd.runtimes.runc]`,
    `runtime_type = "io.containerd.runc.v2"`,
    ``,
    `[plugins.${cri}.containerd.runtimes.runc.options]`,
    `SystemdCgroup = true`,
    ``,
    `[plugins.${cri}.cni]`,
    `bin_dir = "/opt/cni/bin"`,
    `conf_dir = "/etc/cni/net.d"`,
    ``,
  ].join("\n");
}

// runc with SystemdCgroup = true wants a systemd cgroup parent (slice:prefix:name), which the CRI-made check pod has
// none of (a kubelet's pod has), and systemd over D-Bus, which this machine lacks: the revert's plain pod cannot start here.
const NO_SYSTEMD = /reverted, but a plain pod with the runtime's default handler did not start: .*for systemd cgroups/;

runShape({
  name: "EKS-style config on containerd 1.x (Debian's 1.6): imports config.d/*.toml, SystemdCgroup = true",
  version: "1.6",
  config: "/etc/containerd/config.toml",
  socket: "/run/containerd/containerd.sock",
  setup(ctx) {
    ctx.write("/etc/containerd/config.toml", eksConfig(ctx, 2));
    mkdirSync(ctx.at("/etc/containerd/config.d"), { recursive: true });
  },
  layout: { distribution: "containerd", method: "in-place", target: "/etc/containerd/config.toml", why: /containerd 1\.x: a marked block in/ },
  plainPodFails: NO_SYSTEMD,
});

runShape({
  name: "containerd 1.x imports trap: config.d/10-nvidia.toml defines [plugins.\"io.containerd.grpc.v1.cri\"] and replaces config.toml's CRI section",
  version: "1.6",
  config: "/etc/containerd/config.toml",
  socket: "/run/containerd/containerd.sock",
  setup(ctx) {
    ctx.write("/etc/containerd/config.toml", eksConfig(ctx, 2));
    // What a GPU toolkit's drop-in looks like: the whole CRI section again, plus its runtime.
    ctx.write(
      "/etc/containerd/config.d/10-nvidia.toml",
      [
        `version = 2`,
        `[plugins."io.containerd.grpc.v1.cri"]`,
        ENV_KEYS.trimEnd(),
        `  [plugins."io.containerd.grpc.v1.cri".containerd]`,
        `    default_runtime_name = "runc"`,
        `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]`,
        `      runtime_type = "io.containerd.runc.v2"`,
        `      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]`,
        `        BinaryName = "/usr/bin/nvidia-container-runtime"`,
        `        SystemdCgroup = true`,
        `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
        `      runtime_type = "io.containerd.runc.v2"`,
        `      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
        `        SystemdCgroup = true`,
        ``,
      ].join("\n"),
    );
  },
  layout: {
    distribution: "containerd",
    method: "in-place",
    target: "/etc/containerd/config.d/10-nvidia.toml",
    why: /10-nvidia\.toml \(imported by \/etc\/containerd\/config\.toml\) defines \[plugins\."io\.containerd\.grpc\.v1\.cri"\], which replaces the CRI section of \/etc\/containerd\/config\.toml on containerd 1\.x; our block goes into it/,
  },
  applied(ctx) {
    assert.doesNotMatch(readFileSync(ctx.at("/etc/containerd/config.toml"), "utf8"), /sandboxed/, "config.toml untouched: its CRI section is not the one containerd uses");
    assert.match(readFileSync(ctx.at("/etc/containerd/config.d/10-nvidia.toml"), "utf8"), /runtimes\.nvidia\][\s\S]*BEGIN sandbox-operator[\s\S]*runtimes\.sandboxed\]/);
  },
  plainPodFails: NO_SYSTEMD,
});

runShape({
  name: "EKS-style config (version 2) on containerd 2.x: our drop-in in config.d, at the root config's version",
  version: "2",
  config: "/etc/containerd/config.toml",
  socket: "/run/containerd/containerd.sock",
  setup: (ctx) => ctx.write("/etc/containerd/config.toml", eksConfig(ctx, 2)),
  layout: { distribution: "containerd", method: "drop-in", target: "/etc/containerd/config.d/50-sandbox-operator.toml", why: /already imports .*config\.d\/\*\.toml/ },
  applied(ctx) {
    assert.match(readFileSync(ctx.at("/etc/containerd/config.d/50-sandbox-operator.toml"), "utf8"), /^version = 2$/m, "not above the root config's version (containerd 2.x refuses that)");
  },
  plainPodFails: NO_SYSTEMD,
});

runShape({
  name: "hand-written config.toml on containerd 1.x: comments, literal keys, proxy_plugins, child tables before parents, no final newline",
  version: "1.6",
  config: "/etc/containerd/config.toml",
  socket: "/run/containerd/containerd.sock",
  setup(ctx) {
    ctx.write(
      "/etc/containerd/config.toml",
      [
        `# Written by hand; keep the comments.`,
        `version = 2 # the config version`,
        ``,
        `[proxy_plugins]`,
        `  [proxy_plugins."stargz"] # a remote snapshotter`,
        `    type = "snapshot"`,
        `    address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"`,
        ``,
        `# children first, parents after`,
        `[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc.options]`,
        `  SystemdCgroup = false`,
        `[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc]`,
        `  runtime_type = 'io.containerd.runc.v2'`,
        `[plugins.'io.containerd.grpc.v1.cri'.containerd]`,
        `  default_runtime_name = 'runc'`,
        `[plugins.'io.containerd.grpc.v1.cri']`,
        indent(ENV_KEYS, "  "),
        `[plugins.'io.containerd.internal.v1.opt']`,
        `  path = '${ctx.opt}'`,
        `# the end, without a newline`,
      ].join("\n"),
    );
  },
  layout: { distribution: "containerd", method: "in-place", target: "/etc/containerd/config.toml", why: /a marked block in/ },
});

runShape({
  name: "hand-written config.toml on containerd 2.x: comments before the first table, an existing literal-string import with a comment",
  version: "2",
  config: "/etc/containerd/config.toml",
  socket: "/run/containerd/containerd.sock",
  setup(ctx) {
    ctx.write("/etc/containerd/extra.toml", `version = 3\n[debug]\n  level = 'info'\n`);
    ctx.write(
      "/etc/containerd/config.toml",
      [
        `# Written by hand.`,
        `version = 3`,
        `imports = ['${ctx.at("/etc/containerd/extra.toml")}'] # debug settings`,
        ``,
        `# CRI runtime plugin, literal keys`,
        `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]`,
        `  runtime_type = 'io.containerd.runc.v2'`,
        `[plugins.'io.containerd.cri.v1.runtime']`,
        indent(ENV_KEYS, "  "),
        `[plugins.'io.containerd.internal.v1.opt']`,
        `  path = '${ctx.opt}'`,
        ``,
      ].join("\n"),
    );
  },
  layout: { distribution: "containerd", method: "drop-in+import", target: "/etc/containerd/conf.d/50-sandbox-operator.toml", why: /merges imports/ },
  applied(ctx) {
    assert.match(readFileSync(ctx.at("/etc/containerd/config.toml"), "utf8"), new RegExp(`^imports = \\['[^']+extra\\.toml', "[^"]+conf\\.d/50-sandbox-operator\\.toml"\\] # debug settings$`, "m"));
  },
});
