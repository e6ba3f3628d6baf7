/**
 * Calls' retries over a scripted `fetch`: one `txn_id` per logical call across its
 * attempts, `Retry-After` in seconds, the bound on total time, and which calls are
 * repeated after no answer.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { BridgeError, ConnectionError, MosaicClient, type RetryInfo } from "../src/index.js";
import { FakeFetch, type Scripted } from "./support/fake-fetch.js";

function client(script: Scripted[], options: { maxRetryTimeMs?: number } = {}) {
  const fake = new FakeFetch(script);
  const retries: RetryInfo[] = [];
  const c = new MosaicClient({ baseUrl: "http://bridge.test/", token: "t", fetch: fake.fetch, onRetry: (r) => retries.push(r), ...options });
  return { c, fake, retries };
}

const sent = { status: 200, json: { event_id: "$e", txn_id: "x" } };

test("a write keeps its txn_id across attempts; each logical call draws its own", async () => {
  const { c, fake, retries } = client([{ refuse: true }, { status: 503, json: { errcode: "M_UNAVAILABLE", error: "x" }, headers: { "retry-after": "0" } }, sent, sent]);
  await c.sendMessage({ agent: "a", room_id: "!r:hs", body: "hi" });
  await c.sendMessage({ agent: "a", room_id: "!r:hs", body: "hi" });
  const keys = fake.calls.map((call) => JSON.parse(call.body ?? "{}").txn_id as string);
  assert.equal(keys.length, 4);
  assert.match(keys[0] ?? "", /^ts-[0-9a-f-]{36}$/);
  assert.equal(keys[1], keys[0]);
  assert.equal(keys[2], keys[0]);
  assert.notEqual(keys[3], keys[0]);
  assert.equal(fake.calls[0]?.url.toString(), "http://bridge.test/bridge/v1/messages");
  assert.ok(retries[0]?.error instanceof ConnectionError);
  assert.equal(retries[1]?.delayMs, 0, "Retry-After: 0");
  const { c: own, fake: ownFake } = client([sent]);
  await own.sendMessage({ agent: "a", room_id: "!r:hs", body: "hi", txn_id: "mine" });
  assert.equal(JSON.parse(ownFake.calls[0]?.body ?? "{}").txn_id, "mine");
});

test("Retry-After longer than the time left ends the call with the 429", async () => {
  const limited = { status: 429, json: { errcode: "M_LIMIT_EXCEEDED", error: "slow down" }, headers: { "retry-after": "5" } };
  const { c, retries } = client([limited], { maxRetryTimeMs: 1000 });
  const began = Date.now();
  await assert.rejects(c.listAgents(), (e: unknown) => e instanceof BridgeError && e.status === 429 && e.retryAfterMs === 5000);
  assert.ok(Date.now() - began < 1000, "did not wait for nothing");
  assert.equal(retries.length, 0);
});

test("after no answer, uploads and token creation are not repeated; answers without JSON still map", async () => {
  const { c, fake } = client([{ refuse: true }, { refuse: true }]);
  await assert.rejects(c.uploadMedia("a", new Uint8Array([1])), { name: "ConnectionError", attempts: 1 });
  await assert.rejects(c.createToken({ name: "n", scopes: ["read"], agents: ["*"] }), { name: "ConnectionError", attempts: 1 });
  assert.equal(fake.calls[0]?.headers["content-type"], "application/octet-stream");
  const { c: proxied } = client([{ status: 502, json: undefined }]);
  await assert.rejects(proxied.getAgent("a"), { name: "BridgeError", status: 502, errcode: "M_UNKNOWN" });
});

test("a success answer that is not JSON is a ProtocolError, not retried", async () => {
  let calls = 0;
  const broken = async () => {
    calls += 1;
    return new Response("<html>proxy</html>", { status: 200 });
  };
  const c = new MosaicClient({ baseUrl: "http://bridge.test", token: "t", fetch: broken });
  await assert.rejects(c.listTokens(), { name: "ProtocolError" });
  assert.equal(calls, 1);
});
