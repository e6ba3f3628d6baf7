/**
 * The inbox iterator's own logic over a scripted `fetch`: what it sends when it resumes
 * (`Last-Event-ID`), gaps, repeated items, ends and failures of streams, `Retry-After` of a
 * 503, silent connections, `since=latest`, and the errors that end it.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { BridgeError, MosaicClient, type ReconnectInfo } from "../src/index.js";
import { FakeFetch, itemFrame, type Scripted } from "./support/fake-fetch.js";
import { take } from "./support/wait.js";

function client(script: Scripted[]): { client: MosaicClient; fake: FakeFetch } {
  const fake = new FakeFetch(script);
  return { client: new MosaicClient({ baseUrl: "http://bridge.test", token: "t", fetch: fake.fetch }), fake };
}

test("resumes after ends and failures from the last cursor, once each, honouring Retry-After", async () => {
  const f6 = itemFrame(6);
  const { client: c, fake } = client([
    { stream: [": connected\n\n", itemFrame(5), f6.slice(0, 10), f6.slice(10)], then: "end" },
    { stream: [": connected\n\n", 'event: gap\ndata: {"gap":true}\n\n', itemFrame(9)], then: "fail" },
    { status: 503, json: { errcode: "M_UNAVAILABLE", error: "later", retry_after_ms: 300 } },
    { stream: [itemFrame(9), ": keep-alive\n\n", itemFrame(10)], then: "hang" },
  ]);
  const gaps: string[] = [];
  const reconnects: ReconnectInfo[] = [];
  const stop = new AbortController();
  const inbox = c.inbox("a", { signal: stop.signal, onGap: (g) => gaps.push(g), onReconnect: (r) => reconnects.push(r) });
  const began = Date.now();
  const items = await take(inbox, 4, 10_000, "items");
  stop.abort();
  assert.equal((await inbox.next()).done, true, "aborting ends the iteration");
  assert.deepEqual(items.map((i) => i.cursor), ["5", "6", "9", "10"]);
  assert.deepEqual(gaps, ["6"]);
  assert.equal(reconnects[0]?.reason, "ended");
  assert.equal(reconnects[0]?.delayMs, 0, "a productive stream that ended is resumed at once");
  assert.ok(reconnects[1]?.reason instanceof Error && !(reconnects[1].reason instanceof BridgeError));
  const unavailable = reconnects[2];
  assert.ok(unavailable?.reason instanceof BridgeError && unavailable.reason.status === 503);
  assert.ok(unavailable.delayMs >= 300, `waited ${unavailable.delayMs} ms`);
  assert.ok(Date.now() - began >= 300);
  const sent = fake.calls.map((call) => [call.url.searchParams.get("since"), call.headers["last-event-id"]]);
  assert.deepEqual(sent, [
    [null, undefined],
    ["6", "6"],
    ["9", "9"],
    ["9", "9"],
  ]);
  for (const call of fake.calls) {
    assert.equal(call.url.pathname, "/bridge/v1/agents/a/events");
    assert.equal(call.headers.accept, "text/event-stream");
    assert.equal(call.headers.authorization, "Bearer t");
  }
});

test("a silent connection is replaced; 'latest' becomes a cursor first", async () => {
  const latest = { events: [JSON.parse(itemFrame(3).split("data: ")[1] ?? "")], next: "3" };
  const { client: c, fake } = client([
    { status: 200, json: latest },
    { stream: [": connected\n\n"], then: "hang" },
    { stream: [itemFrame(4)], then: "hang" },
  ]);
  const stop = new AbortController();
  const reconnects: ReconnectInfo[] = [];
  const inbox = c.inbox("a", { since: "latest", idleTimeoutMs: 200, signal: stop.signal, onReconnect: (r) => reconnects.push(r) });
  const items = await take(inbox, 2, 10_000, "items");
  stop.abort();
  assert.deepEqual(items.map((i) => i.cursor), ["3", "4"]);
  assert.equal(fake.calls[0]?.url.searchParams.get("since"), "latest");
  assert.equal(fake.calls[0]?.headers.accept, undefined, "a page, not a stream");
  assert.equal(fake.calls[1]?.url.searchParams.get("since"), "3");
  assert.equal(fake.calls[2]?.headers["last-event-id"], "3");
  assert.equal(reconnects.length, 1);
  assert.match(String(reconnects[0]?.reason), /silent/);
});

test("refusals end the iteration with their BridgeError; a malformed item with a ProtocolError", async () => {
  const { client: refused } = client([{ status: 403, json: { errcode: "M_FORBIDDEN", error: "the read scope" } }]);
  await assert.rejects(refused.inbox("a").next(), { name: "BridgeError", status: 403, errcode: "M_FORBIDDEN" });
  const { client: garbled } = client([{ stream: ['id: 1\nevent: event\ndata: {"position":"1"}\n\n'], then: "hang" }]);
  await assert.rejects(garbled.inbox("a").next(), { name: "ProtocolError" });
});
