/**
 * The inbox iterator against a running daemon: a human's message arriving while it
 * iterates, `since=latest`, and resuming without repeats or holes after the loop stops,
 * after the daemon ends the stream (`limits.stream_max_s`, MOSAIC_STREAM_MAX_S) and after
 * the connection is cut.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { BridgeError, MosaicClient, type InboxItem, type ReconnectInfo } from "../src/index.js";
import { adminClient, testEnv, unique } from "./support/env.js";
import { roomWithAgent, say } from "./support/human.js";
import { BreakingProxy } from "./support/proxy.js";
import { delay, eventually, until, within } from "./support/wait.js";

const WAIT_MS = 20_000;

/** The human's messages among the items (not memberships, not the agent's own). */
const fromHuman = (item: InboxItem) => item.sender === testEnv().humanId && item.type === "m.room.message";
const body = (item: InboxItem) => item.content.body as string;
const isBody = (text: string) => (item: InboxItem) => fromHuman(item) && body(item) === text;

/** Each item's cursor is after the one before. */
function assertAscending(items: InboxItem[], after: string): void {
  let last = BigInt(after);
  for (const item of items) {
    assert.ok(BigInt(item.cursor) > last, `cursor ${item.cursor} after ${last}: ${JSON.stringify(items)}`);
    last = BigInt(item.cursor);
  }
}

describe("the inbox iterator", { timeout: 90_000 }, () => {
  test("yields a human's message that arrives while it iterates, and the agent answers it", async () => {
    const client = adminClient();
    const { agent, room } = await roomWithAgent("ts-hears");
    const { next: start } = await client.events(agent, { since: "latest" });
    const stop = new AbortController();
    const inbox = client.inbox(agent, { since: start, signal: stop.signal });
    try {
      const pending = until(inbox, fromHuman, isBody("hello agent"), WAIT_MS, "the human's message");
      await delay(300);
      const eventId = await say(room, "hello agent");
      const [item] = await pending;
      assert.ok(item);
      assert.equal(item.event_id, eventId);
      assert.equal(item.room_id, room);
      assert.equal(item.sender, testEnv().humanId);
      assert.equal(typeof item.mentioned, "boolean");
      assert.equal(typeof item.origin_server_ts, "number");
      assert.ok(BigInt(item.cursor) > BigInt(start));

      // What an agent loop does with it: react, answer in its thread, mark it read.
      const reaction = await client.react({ agent, room_id: room, event_id: eventId, key: "👀" });
      const reply = await client.sendMessage({ agent, room_id: room, body: "on it", thread_root: eventId });
      await client.markRead({ agent, room_id: room, event_id: eventId });
      const history = await client.roomMessages(room, agent, { dir: "b", limit: 20 });
      const byId = (id: string) => history.events.find((e) => e.event_id === id);
      const relates = (id: string) => (byId(id)?.content as { "m.relates_to"?: Record<string, unknown> })?.["m.relates_to"];
      assert.deepEqual(relates(reaction.event_id), { rel_type: "m.annotation", event_id: eventId, key: "👀" });
      assert.equal(relates(reply.event_id)?.rel_type, "m.thread");
      assert.equal(relates(reply.event_id)?.event_id, eventId);
    } finally {
      stop.abort();
    }
  });

  test("since 'latest' yields only what arrives after it started", async () => {
    const client = adminClient();
    const { agent, room } = await roomWithAgent("ts-latest");
    const before = await say(room, "before");
    // Wait until the daemon has it, so that "latest" is after it.
    await eventually(WAIT_MS, "the first message in the inbox", async () => {
      const page = await client.events(agent, { limit: 100 });
      return page.events.some((e) => e.event_id === before) ? true : undefined;
    });
    const stop = new AbortController();
    const inbox = client.inbox(agent, { since: "latest", signal: stop.signal });
    try {
      const pending = until(inbox, fromHuman, isBody("after"), WAIT_MS, "the second message");
      await delay(500);
      await say(room, "after");
      assert.deepEqual((await pending).map(body), ["after"]);
    } finally {
      stop.abort();
    }
  });

  test("resumes from a stored cursor after the loop stops, without repeating or skipping", async () => {
    const client = adminClient();
    const { agent, room } = await roomWithAgent("ts-resume");
    const { next: start } = await client.events(agent, { since: "latest" });
    for (const text of ["one", "two", "three"]) await say(room, text);
    let stored = "";
    const first = new AbortController();
    const loop = async () => {
      for await (const item of client.inbox(agent, { since: start, signal: first.signal })) {
        if (isBody("one")(item)) {
          stored = item.cursor;
          break;
        }
      }
    };
    await within(WAIT_MS, "the first message", loop()).finally(() => first.abort());
    assert.notEqual(stored, "");
    const stop = new AbortController();
    const again = client.inbox(agent, { since: stored, signal: stop.signal });
    try {
      const rest = await until(again, fromHuman, isBody("three"), WAIT_MS, "the rest after the stored cursor");
      assert.deepEqual(rest.map(body), ["two", "three"]);
      assertAscending(rest, stored);
    } finally {
      stop.abort();
    }
  });

  test("goes on across the daemon's ends of stream, every item once and in order", async () => {
    const maxLifeS = Number(process.env.MOSAIC_STREAM_MAX_S);
    assert.ok(maxLifeS > 0 && maxLifeS <= 5, "MOSAIC_STREAM_MAX_S: the daemon's limits.stream_max_s, at most 5");
    const client = adminClient();
    const { agent, room } = await roomWithAgent("ts-ends");
    const { next: start } = await client.events(agent, { since: "latest" });
    const reconnects: ReconnectInfo[] = [];
    const stop = new AbortController();
    const inbox = client.inbox(agent, { since: start, signal: stop.signal, onReconnect: (r) => reconnects.push(r) });
    const said = Array.from({ length: 6 }, (_, i) => `tick ${i}`);
    try {
      const pending = until(inbox, fromHuman, isBody(said.at(-1) ?? ""), WAIT_MS + maxLifeS * 3000, "every tick");
      for (const text of said) {
        await say(room, text);
        await delay((maxLifeS * 2500) / said.length);
      }
      const got = await pending;
      assert.deepEqual(got.map(body), said);
      assertAscending(got, start);
      assert.ok(reconnects.some((r) => r.reason === "ended"), `no end of stream seen: ${JSON.stringify(reconnects)}`);
    } finally {
      stop.abort();
    }
  });

  test("resumes after the connection is cut, with what was said meanwhile", async () => {
    const proxy = await BreakingProxy.start(testEnv().bridgeUrl);
    const client = new MosaicClient({ baseUrl: proxy.url, token: testEnv().bridgeToken });
    const { agent, room } = await roomWithAgent("ts-cut");
    const { next: start } = await client.events(agent, { since: "latest" });
    const reconnects: ReconnectInfo[] = [];
    const stop = new AbortController();
    const inbox = client.inbox(agent, { since: start, signal: stop.signal, onReconnect: (r) => reconnects.push(r) });
    try {
      const first = until(inbox, fromHuman, isBody("before the cut"), WAIT_MS, "the first message");
      await delay(300);
      await say(room, "before the cut");
      const [one] = await first;
      proxy.cutAll();
      await say(room, "during the cut");
      await say(room, "after the cut");
      const rest = await until(inbox, fromHuman, isBody("after the cut"), WAIT_MS, "what was said since");
      assert.deepEqual(rest.map(body), ["during the cut", "after the cut"]);
      assert.ok(one);
      assertAscending(rest, one.cursor);
      assert.ok(
        reconnects.some((r) => r.reason instanceof Error && r.cursor === one.cursor),
        `a failed connection resumed from ${one.cursor}: ${JSON.stringify(reconnects)}`,
      );
    } finally {
      stop.abort();
      await proxy.close();
    }
  });

  test("ends with a BridgeError when the agent does not exist", async () => {
    const client = adminClient();
    await assert.rejects(
      async () => {
        for await (const item of client.inbox(unique("ts-nobody"))) assert.fail(`an item: ${JSON.stringify(item)}`);
      },
      (e: unknown) => e instanceof BridgeError && e.status === 404 && e.errcode === "M_NOT_FOUND",
    );
  });
});
