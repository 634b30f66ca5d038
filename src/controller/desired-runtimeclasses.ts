// The controller's view of the RuntimeClass builder: the one builder lives in src/render (shared
// with the OpenShift MachineConfig path, which must publish exactly the same objects).
export * from "../render/desired-runtimeclasses.js";
