/** When the client waits before trying again. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { backoffMs, parseRetryAfter, retryAfterMs } from "../src/retry.js";

test("Retry-After in seconds or as an HTTP date, and the body's retry_after_ms", () => {
  const now = Date.parse("2030-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Tue, 01 Jan 2030 00:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Mon, 31 Dec 2029 00:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
  // The longer of the two wins: the header is rounded to whole seconds.
  assert.equal(retryAfterMs("1", 400, now), 1000);
  assert.equal(retryAfterMs("1", 1500, now), 1500);
  assert.equal(retryAfterMs(null, 250, now), 250);
  assert.equal(retryAfterMs(null, undefined, now), undefined);
});

test("backoff grows to its ceiling and never waits nothing", () => {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const wait = backoffMs(attempt, 100, 5000);
    const ceiling = Math.min(5000, 100 * 2 ** attempt);
    assert.ok(wait >= ceiling / 2 && wait <= ceiling, `attempt ${attempt}: ${wait}`);
  }
});
