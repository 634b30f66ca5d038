import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TerminalError, WorkQueue } from "./workqueue.js";

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

describe("WorkQueue", () => {
  it("dedupes, runs one reconcile per key at a time, and re-runs a key added while in flight", async () => {
    const q = new WorkQueue({ workers: 4 });
    let running = 0;
    let max = 0;
    const seen: string[] = [];
    q.start(async (k) => {
      running++;
      max = Math.max(max, running);
      seen.push(k);
      await tick(30);
      running--;
    });
    q.add("a");
    q.add("a");
    await tick(5);
    q.add("a"); // in flight: marked dirty, runs once more afterwards
    q.add("a");
    await tick(120);
    await q.stop();
    assert.deepEqual(seen, ["a", "a"]);
    assert.equal(max, 1);
  });

  it("retries errors with backoff, stops on TerminalError, honours requeueAfter", async () => {
    const q = new WorkQueue({ baseDelayMs: 10 });
    const calls: Record<string, number> = { err: 0, term: 0, later: 0 };
    q.start(async (k) => {
      calls[k]!++;
      if (k === "err" && calls.err! < 3) throw new Error("transient");
      if (k === "term") throw new TerminalError("bad input");
      if (k === "later" && calls.later === 1) return { requeueAfter: 30 };
      return undefined;
    });
    q.add("err");
    q.add("term");
    q.add("later");
    await tick(200);
    await q.stop();
    assert.deepEqual(calls, { err: 3, term: 1, later: 2 });
  });
});
