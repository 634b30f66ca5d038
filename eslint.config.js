// Lint rules, including the import boundaries STYLE.md sets: nothing imports src/cli,
// pure builders import no I/O, api/kube/telemetry import no component.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const noCli = { group: ["**/cli/**", "../cli/*", "./cli/*"], message: "Nothing imports src/cli (STYLE.md)." };
const components = ["controller", "agent", "admission", "openshift", "cli", "manifests"];
const ioModules = ["node:fs", "node:fs/promises", "node:child_process", "node:net", "node:http", "node:https", "@kubernetes/client-node", "@grpc/grpc-js"];
const noIo = ioModules.map((name) => ({ name, message: "Pure code imports no I/O (STYLE.md): move the I/O to the shell that calls it." }));
const noKube = { group: ["**/kube/**", "../kube/*"], message: "Pure code imports no I/O (STYLE.md)." };
const innerLayer = { group: components.flatMap((c) => [`**/${c}/**`, `../${c}/*`]), message: "api, kube and telemetry are inner layers: they import no component (STYLE.md)." };

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "test/harness/k8s-bins/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      complexity: ["error", 25],
      "max-depth": ["error", 5],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    files: ["src/**/*.ts"],
    ignores: ["src/cli/**"],
    rules: { "no-restricted-imports": ["error", { patterns: [noCli] }] },
  },
  {
    files: ["src/kube/**/*.ts", "src/telemetry/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [innerLayer] }] },
  },
  {
    // API schemas are pure and inner: no I/O, no component.
    files: ["src/api/**/*.ts"],
    ignores: ["src/**/*.test.ts"],
    rules: { "no-restricted-imports": ["error", { paths: noIo, patterns: [innerLayer, noKube] }] },
  },
  {
    // Pure builders: files named desired*.ts / render*.ts / policy*.ts compute, they do no I/O.
    files: ["src/**/desired*.ts", "src/**/render*.ts", "src/**/policy*.ts"],
    ignores: ["src/**/*.test.ts"],
    rules: { "no-restricted-imports": ["error", { paths: noIo, patterns: [noCli, noKube] }] },
  },
  {
    // src/render/ holds the pure renderers the components share (node files, RuntimeClasses):
    // no I/O, no component.
    files: ["src/render/**/*.ts"],
    ignores: ["src/**/*.test.ts", "src/**/*.test-util.ts"],
    rules: { "no-restricted-imports": ["error", { paths: noIo, patterns: [innerLayer, noKube] }] },
  },
  {
    // The controller and the OpenShift path render node files through src/render/node, never src/agent.
    files: ["src/controller/**/*.ts", "src/openshift/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [noCli, { group: ["**/agent/**", "../agent/*"], message: "The controller does not import src/agent: shared node renderers live in src/render/node (ADR 0005)." }] }] },
  },
  {
    files: ["test/**/*.ts", "bench/**/*.ts", "**/*.test.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
);
