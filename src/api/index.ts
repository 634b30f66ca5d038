// The public API surface of sandboxing.dev/v1alpha1: types, schemas and validation.
export * from "./common.js";
export * from "./sandboxconfig.js";
export * from "./sandboxnode.js";
export * from "./structural.js";
export * from "./validate.js";
