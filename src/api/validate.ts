// Validation of our objects by the same schema the CRD carries (CEL rules are the apiserver's);
// errors name the field and say what is wrong, so callers can show them as they are.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { TSchema } from "@sinclair/typebox";
import { SandboxConfig } from "./sandboxconfig.js";
import { SandboxNode } from "./sandboxnode.js";
import { toStructural } from "./structural.js";

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = addFormats(new Ajv({ strict: false, allErrors: true, useDefaults: true }));
const compiled = new Map<TSchema, ValidateFunction>();

export interface FieldError {
  field: string;
  message: string;
}

export class ValidationError extends Error {
  constructor(
    readonly kind: string,
    readonly objectName: string,
    readonly errors: FieldError[],
  ) {
    super(`${kind} ${objectName} is invalid: ${errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`);
  }
}

function validator(schema: TSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(toStructural(schema));
    compiled.set(schema, fn);
  }
  return fn;
}

function fieldOf(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, "").split("/").filter(Boolean);
  const field = path.map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join("").replace(/^\./, "");
  if (e.keyword === "required") return [field, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join(".");
  return field || "(root)";
}

function messageOf(e: ErrorObject): string {
  if (e.keyword === "enum") return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(", ")}`;
  if (e.keyword === "required") return "is required";
  return e.message ?? "is invalid";
}

/** Checks an object against a schema, applying schema defaults in place; throws ValidationError. */
export function validateAgainst<T>(schema: TSchema, kind: string, obj: unknown): T {
  const fn = validator(schema);
  if (!fn(obj)) {
    const name = ((obj as { metadata?: { name?: string } })?.metadata?.name) ?? "(unnamed)";
    const errors = (fn.errors ?? []).filter((e) => e.keyword !== "anyOf").map((e) => ({ field: fieldOf(e), message: messageOf(e) }));
    throw new ValidationError(kind, name, errors);
  }
  return obj as T;
}

export const validateSandboxConfig = (obj: unknown) => validateAgainst<import("./sandboxconfig.js").SandboxConfig>(SandboxConfig, "SandboxConfig", obj);
export const validateSandboxNode = (obj: unknown) => validateAgainst<import("./sandboxnode.js").SandboxNode>(SandboxNode, "SandboxNode", obj);
