// Turns a TypeBox schema into a Kubernetes structural openAPIV3Schema: plain JSON, no
// TypeBox-only keywords, records as additionalProperties, root metadata left to the apiserver.
import type { TSchema } from "@sinclair/typebox";

type Json = { [k: string]: unknown };

const DROP = new Set(["$id", "$schema", "examples"]);

export function toStructural(schema: TSchema): Json {
  const plain = JSON.parse(JSON.stringify(schema)) as Json; // drops TypeBox's symbol keys
  return clean(plain, true);
}

function clean(node: Json, root: boolean): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (DROP.has(key)) continue;
    if (key === "patternProperties") {
      const only = Object.values(value as Json)[0] as Json;
      out.additionalProperties = clean(only, false);
      continue;
    }
    if (key === "properties") {
      const props: Json = {};
      for (const [name, child] of Object.entries(value as Json)) {
        props[name] = root && name === "metadata" ? { type: "object" } : clean(child as Json, false);
      }
      out.properties = props;
      continue;
    }
    if (key === "items" || key === "additionalProperties") {
      out[key] = typeof value === "object" && value !== null ? clean(value as Json, false) : value;
      continue;
    }
    if (key === "anyOf" && Array.isArray(value)) {
      out.anyOf = value.map((v) => clean(v as Json, false));
      continue;
    }
    out[key] = value;
  }
  if (root && Array.isArray(out.required)) {
    out.required = (out.required as string[]).filter((r) => r === "spec");
  }
  if (out.type === "object" && out.additionalProperties === true && root === false && !out.properties) {
    out["x-kubernetes-preserve-unknown-fields"] = true;
    delete out.additionalProperties;
  }
  return out;
}
