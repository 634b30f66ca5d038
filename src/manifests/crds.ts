// The CustomResourceDefinitions, built from the API schemas in src/api (the one source).
import type { TSchema } from "@sinclair/typebox";
import {
  GROUP,
  SANDBOXCONFIG_KIND,
  SANDBOXCONFIG_PLURAL,
  SANDBOXNODE_KIND,
  SANDBOXNODE_PLURAL,
  SandboxConfig,
  SandboxNode,
  VERSION,
  toStructural,
} from "../api/index.js";

interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "date" | "boolean";
  jsonPath: string;
  description?: string;
  priority?: number;
}

function crd(kind: string, plural: string, shortNames: string[], schema: TSchema, columns: PrinterColumn[]) {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "sandbox-operator" } },
    spec: {
      group: GROUP,
      scope: "Cluster",
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames, categories: ["sandboxing"] },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...columns, { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" }],
          schema: { openAPIV3Schema: toStructural(schema) },
        },
      ],
    },
  };
}

const condition = (type: string, field: "status" | "reason") => `.status.conditions[?(@.type=="${type}")].${field}`;

export function sandboxConfigCrd() {
  return crd(SANDBOXCONFIG_KIND, SANDBOXCONFIG_PLURAL, ["sbc"], SandboxConfig, [
    { name: "Ready", type: "string", jsonPath: condition("Ready", "status") },
    { name: "Nodes Ready", type: "integer", jsonPath: ".status.counts.ready" },
    { name: "Selected", type: "integer", jsonPath: ".status.counts.selected" },
    { name: "Degraded", type: "integer", jsonPath: ".status.counts.degraded" },
    { name: "Reason", type: "string", jsonPath: condition("Ready", "reason") },
  ]);
}

export function sandboxNodeCrd() {
  return crd(SANDBOXNODE_KIND, SANDBOXNODE_PLURAL, ["sbn"], SandboxNode, [
    { name: "Action", type: "string", jsonPath: ".spec.action" },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Ready", type: "string", jsonPath: condition("Ready", "status") },
    { name: "Reason", type: "string", jsonPath: condition("Ready", "reason") },
    { name: "CRI", type: "string", jsonPath: ".status.probe.cri.kind", priority: 1 },
  ]);
}

export function crds() {
  return [sandboxConfigCrd(), sandboxNodeCrd()];
}
