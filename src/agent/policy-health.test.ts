import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decideHealth, DEFAULT_HEALTH_LIMITS, type HealthInput } from "./policy-health.js";

const now = 10_000_000;
const min = 60_000;
const base: HealthInput = { now, watchOpen: true, lastContactAt: now - 1_000 };

describe("decideHealth (agent /healthz)", () => {
  const table: Array<[string, Partial<HealthInput>, boolean, RegExp]> = [
    ["watch open, idle", {}, true, /^watch open$/],
    ["watch open and quiet for 10 min (no events is not death)", { lastContactAt: now - 10 * min }, true, /watch open/],
    ["watch closed, reconnecting for 30 s", { watchOpen: false, lastContactAt: now - 30_000 }, true, /reconnecting for 30 s/],
    ["watch closed exactly at the limit", { watchOpen: false, lastContactAt: now - 2 * min }, true, /reconnecting/],
    ["watch closed past the limit", { watchOpen: false, lastContactAt: now - 2 * min - 1, lastWatchError: "connect ECONNREFUSED" }, false, /watch down for 120 s.*ECONNREFUSED/],
    ["apply running 15 min (restart, image pull, verification)", { passStartedAt: now - 15 * min }, true, /applying for 900 s/],
    ["apply running 15 min, heartbeat passes blocked behind it", { passStartedAt: now - 15 * min, lastContactAt: now - 5 * min }, true, /applying/],
    ["apply running 29 min", { passStartedAt: now - 29 * min }, true, /applying/],
    ["pass running 31 min: stuck", { passStartedAt: now - 31 * min }, false, /run for 1860 s.*stuck/],
    ["long apply, but the watch is dead", { passStartedAt: now - 5 * min, watchOpen: false, lastContactAt: now - 3 * min }, false, /watch down/],
  ];
  for (const [name, input, healthy, message] of table) {
    it(name, () => {
      const h = decideHealth({ ...base, ...input }, DEFAULT_HEALTH_LIMITS);
      assert.equal(h.healthy, healthy, h.message);
      assert.match(h.message, message);
    });
  }
  it("limits are configurable", () => {
    assert.equal(decideHealth({ ...base, watchOpen: false, lastContactAt: now - 3_000 }, { watchDeadAfterMs: 2_000, passStuckAfterMs: min }).healthy, false);
  });
});
