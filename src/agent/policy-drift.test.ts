import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decideDrift, driftPolicy, type DriftState } from "./policy-drift.js";

describe("decideDrift", () => {
  const p = driftPolicy(60_000);

  it("a clean check resets the streak", () => {
    assert.deepEqual(decideDrift({ streak: 5, holdUntil: 10 }, false, 0, p), { action: "clean", next: { streak: 0 } });
  });

  it("re-applies at once up to repeatLimit overwrites in a row, then holds one interval, doubling, capped", () => {
    let s: DriftState = { streak: 0 };
    let now = 0;
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      const d = decideDrift(s, true, now, p);
      seen.push(d.action === "hold" ? `hold ${d.waitMs / 1000}` : d.action);
      s = d.next;
      // A hold ends: the next check re-applies once, and only an overwrite after that counts.
      if (d.action === "hold") {
        now += d.waitMs;
        const again = decideDrift(s, true, now, p);
        assert.equal(again.action, "reapply");
        s = again.next;
      }
    }
    assert.deepEqual(seen, ["reapply", "reapply", "reapply", "hold 60", "hold 120", "hold 240", "hold 480", "hold 960", "hold 1920", "hold 3600", "hold 3600", "hold 3600"]);
  });

  it("a check during a hold keeps holding without counting another overwrite", () => {
    const d = decideDrift({ streak: 4, holdUntil: 100_000 }, true, 40_000, p);
    assert.deepEqual(d, { action: "hold", next: { streak: 4, holdUntil: 100_000 }, waitMs: 60_000 });
  });
});
