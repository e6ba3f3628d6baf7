/**
 * Calls against a running daemon when things go wrong: a rate-limited token (429 with
 * `Retry-After`), error answers mapped to {@link BridgeError}, no answer at all, and a write
 * whose answer was lost, retried with the same `txn_id` and done once.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { BridgeError, ConnectionError, MosaicClient, type RetryInfo } from "../src/index.js";
import { adminClient, testEnv, unique } from "./support/env.js";
import { roomWithAgent } from "./support/human.js";
import { BreakingProxy } from "./support/proxy.js";

/** A `BridgeError` with this status and errcode, whose message names `mentions`. */
function bridgeError(status: number, errcode: string, mentions?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof BridgeError, `not a BridgeError: ${String(e)}`);
    assert.equal(e.status, status, e.message);
    assert.equal(e.errcode, errcode, e.message);
    if (mentions !== undefined) assert.match(e.error, new RegExp(mentions), e.message);
    return true;
  };
}

describe("calls", { timeout: 60_000 }, () => {
  test("a rate-limited token's 429 is retried after its Retry-After", async () => {
    const admin = adminClient();
    const issued = await admin.createToken({ name: unique("ts-slow"), scopes: ["read"], agents: ["*"], rate_per_s: 1 });
    const token = issued.token ?? "";
    assert.match(token, /^mas_[0-9a-f]{64}$/);
    const retries: RetryInfo[] = [];
    const slow = new MosaicClient({ baseUrl: testEnv().bridgeUrl, token, onRetry: (r) => retries.push(r) });
    await slow.listAgents();
    const began = Date.now();
    await slow.listAgents();
    const took = Date.now() - began;
    assert.equal(retries.length, 1, JSON.stringify(retries));
    const [retry] = retries;
    assert.ok(retry);
    bridgeError(429, "M_LIMIT_EXCEEDED")(retry.error);
    assert.ok(retry.error instanceof BridgeError && (retry.error.retryAfterMs ?? 0) > 0);
    // The header says whole seconds (at least 1): the client waits at least that.
    assert.ok(retry.delayMs >= 1000, `waited ${retry.delayMs} ms`);
    assert.ok(took >= retry.delayMs, `the second call took ${took} ms`);

    // Without retries, the 429 is the caller's, with how long to wait.
    const impatient = new MosaicClient({ baseUrl: testEnv().bridgeUrl, token, retries: 0 });
    await assert.rejects(impatient.listAgents(), (e: unknown) => {
      bridgeError(429, "M_LIMIT_EXCEEDED")(e);
      return e instanceof BridgeError && e.retryAfterMs !== undefined && e.retryAfterMs > 0;
    });

    // Revoked: refused at once, and not listed any more.
    assert.ok((await admin.listTokens()).tokens.some((t) => t.id === issued.id && t.token == null));
    await admin.revokeToken(issued.id);
    await assert.rejects(slow.listAgents(), bridgeError(403, "M_FORBIDDEN"));
    assert.ok(!(await admin.listTokens()).tokens.some((t) => t.id === issued.id));
  });

  test("error answers are BridgeErrors with status, errcode and message, not retried", async () => {
    const retries: RetryInfo[] = [];
    const client = adminClient({ onRetry: (r) => retries.push(r) });
    const { agent, room } = await roomWithAgent("ts-errors");
    await assert.rejects(
      client.sendMessage({ agent: "Not A Slug", room_id: room, body: "x" }),
      bridgeError(400, "M_BAD_JSON", "agent"),
    );
    await assert.rejects(client.sendMessage({ agent, room_id: room, body: "" }), bridgeError(400, "M_BAD_JSON", "body"));
    await assert.rejects(client.getAgent(unique("ts-nobody")), bridgeError(404, "M_NOT_FOUND"));
    await assert.rejects(client.roomMessages(room, agent, { dir: "sideways" }), bridgeError(400, "M_INVALID_PARAM", "dir"));
    const first = await client.sendMessage({ agent, room_id: room, body: "first", txn_id: "k1" });
    await assert.rejects(
      client.sendMessage({ agent, room_id: room, body: "another", txn_id: "k1" }),
      bridgeError(409, "M_IDEMPOTENCY_CONFLICT"),
    );
    const again = await client.sendMessage({ agent, room_id: room, body: "first", txn_id: "k1" });
    assert.equal(again.event_id, first.event_id);
    const stranger = new MosaicClient({ baseUrl: testEnv().bridgeUrl, token: "not-a-token" });
    await assert.rejects(stranger.listAgents(), bridgeError(403, "M_FORBIDDEN"));
    assert.deepEqual(retries, []);
  });

  test("no answer: a ConnectionError after the bounded retries, none for a write without txn_id", async () => {
    const retries: RetryInfo[] = [];
    // Port 9 (discard) is closed on loopback: every connection is refused.
    const client = new MosaicClient({ baseUrl: "http://127.0.0.1:9", token: "t", retries: 2, onRetry: (r) => retries.push(r) });
    await assert.rejects(client.listAgents(), (e: unknown) => e instanceof ConnectionError && e.attempts === 3);
    assert.equal(retries.length, 2);
    retries.length = 0;
    await assert.rejects(
      client.createToken({ name: "x", scopes: ["read"], agents: ["*"] }),
      (e: unknown) => e instanceof ConnectionError && e.attempts === 1,
    );
    assert.equal(retries.length, 0);
  });

  test("a message whose answer was lost is sent again with the same txn_id, and sent once", async () => {
    const proxy = await BreakingProxy.start(testEnv().bridgeUrl);
    try {
      const retries: RetryInfo[] = [];
      const client = new MosaicClient({ baseUrl: proxy.url, token: testEnv().bridgeToken, onRetry: (r) => retries.push(r) });
      const { agent, room } = await roomWithAgent("ts-once");
      const text = unique("said once");
      proxy.dropNextAnswer();
      const sent = await client.sendMessage({ agent, room_id: room, body: text });
      assert.equal(proxy.broken, 1, "the first answer was dropped");
      assert.equal(retries.length, 1, JSON.stringify(retries));
      assert.ok(retries[0]?.error instanceof ConnectionError);
      assert.match(sent.txn_id ?? "", /^ts-/, "the client drew the txn_id");
      const history = await client.roomMessages(room, agent, { dir: "b", limit: 50 });
      const copies = history.events.filter((e) => (e.content as { body?: string }).body === text);
      assert.equal(copies.length, 1, JSON.stringify(copies));
      assert.equal(copies[0]?.event_id, sent.event_id);
    } finally {
      await proxy.close();
    }
  });
});
