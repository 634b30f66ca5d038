// The controller's view of the shared desired-state builder (src/render/desired-node.ts), which
// the agent also uses to compute desired from SandboxNode spec.fromConfig.
export * from "../render/desired-node.js";
