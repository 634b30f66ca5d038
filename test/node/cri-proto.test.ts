// Our CRI proto subset against upstream k8s.io/cri-api (from the Go module cache the harness fills
// when it builds kube-apiserver): every message, field name, number, type and label must match.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { it } from "node:test";
import * as protoLoader from "@grpc/proto-loader";
import { protoPath } from "../../src/agent/cri/client.js";
import { CACHE_DIR, ensureBinary } from "../harness/binaries.js";

interface Field {
  name: string;
  number: number;
  type: string;
  typeName: string;
  label: string;
}

function messages(file: string): Map<string, Field[]> {
  const def = protoLoader.loadSync(file, { keepCase: true });
  const out = new Map<string, Field[]>();
  for (const [name, d] of Object.entries(def)) {
    const t = (d as { type?: { field?: Field[] } }).type;
    if (t?.field) out.set(name, t.field);
  }
  return out;
}

it("runtime.proto is a faithful subset of k8s.io/cri-api runtime/v1", async () => {
  await ensureBinary("kube-apiserver");
  const upstream = join(CACHE_DIR, "go", "mod", "k8s.io", "cri-api@v0.34.4", "pkg", "apis", "runtime", "v1", "api.proto");
  assert.ok(existsSync(upstream), `${upstream} missing: the kube-apiserver build (test/harness/k8s-bins) downloads k8s.io/cri-api`);
  const ours = messages(protoPath());
  const theirs = messages(upstream);
  assert.ok(ours.size >= 40, `expected the subset to define many messages, got ${ours.size}`);
  for (const [msg, fields] of ours) {
    const up = theirs.get(msg);
    assert.ok(up, `message ${msg} does not exist upstream`);
    for (const f of fields) {
      const u: Field | undefined = up.find((x) => x.number === f.number);
      assert.ok(u, `${msg}.${f.name} = ${f.number}: no field with that number upstream`);
      assert.deepEqual([f.name, f.type, f.typeName.split(".").pop(), f.label], [u.name, u.type, u.typeName.split(".").pop(), u.label], `${msg} field ${f.number}`);
    }
  }
});
