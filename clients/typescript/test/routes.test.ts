/**
 * Every method of the client against a running daemon, each answer checked for the fields
 * its generated type promises: what an agent does in a room (messages, threads, edits,
 * files, reactions, redactions, receipts, custom events, typing), reads of rooms, agents'
 * profiles and removal, inbox pages and tokens.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { adminClient, testEnv, unique } from "./support/env.js";
import { roomWithAgent } from "./support/human.js";

const isEventId = (id: unknown) => typeof id === "string" && id.startsWith("$");

test("every route answers what its generated type says", { timeout: 60_000 }, async () => {
  const client = adminClient();
  const { agent, room } = await roomWithAgent("ts-routes");

  const profile = await client.putAgent(agent, { display_name: "Route Walker" });
  assert.equal(profile.display_name, "Route Walker");
  assert.equal(typeof profile.registered, "boolean");
  const state = await client.getAgent(agent);
  assert.equal(state.agent, agent);
  assert.ok(state.joined_rooms.includes(room), JSON.stringify(state));
  assert.equal(typeof state.queued_messages, "number");
  const listed = await client.listAgents({ limit: 10_000 });
  assert.ok(listed.agents.some((a) => a.agent === agent));

  await client.setTyping({ agent, room_id: room, typing: true, timeout_ms: 5000 });
  await client.setTyping({ agent, room_id: room, typing: false });

  const root = await client.sendMessage({ agent, room_id: room, body: "**root**" });
  assert.ok(isEventId(root.event_id));
  const inThread = await client.sendMessage({ agent, room_id: room, body: "in thread", thread_root: root.event_id });
  const edit = await client.sendMessage({ agent, room_id: room, body: "**root**, edited", edit_of: root.event_id });
  const notice = await client.sendMessage({ agent, room_id: room, body: "plain", msgtype: "m.notice", format: "plain" });
  const bytes = new TextEncoder().encode("a small file\n");
  const upload = await client.uploadMedia(agent, bytes, { contentType: "text/plain", filename: "note.txt" });
  assert.match(upload.content_uri, /^mxc:\/\//);
  const file = await client.sendFile({ agent, room_id: room, data: bytes, filename: "note.txt", contentType: "text/plain" });
  const custom = await client.sendEvent({ agent, room_id: room, type: "org.mosaic.test", content: { n: 1 } });
  const reaction = await client.react({ agent, room_id: room, event_id: root.event_id, key: "✅" });
  const redaction = await client.redact({ agent, room_id: room, event_id: notice.event_id, reason: "tidy" });
  for (const answer of [inThread, edit, notice, file, custom, reaction, redaction]) assert.ok(isEventId(answer.event_id));
  assert.deepEqual(await client.markRead({ agent, room_id: room, event_id: root.event_id }), {});

  const history = await client.roomMessages(room, agent, { dir: "b", limit: 30 });
  const event = (id: string) => history.events.find((e) => e.event_id === id) as { type: string; content: Record<string, unknown> };
  assert.equal(event(custom.event_id).type, "org.mosaic.test");
  assert.deepEqual(event(custom.event_id).content, { n: 1 });
  assert.equal(event(file.event_id).content.msgtype, "m.file");
  assert.match(String(event(file.event_id).content.url), /^mxc:\/\//);
  assert.equal((event(edit.event_id).content["m.relates_to"] as { rel_type: string }).rel_type, "m.replace");
  assert.ok(typeof history.next === "string" || history.next == null);

  const roomState = await client.roomState(room, agent);
  assert.ok(roomState.events.some((e) => e.type === "m.room.create"));
  const members = await client.roomMembers(room, agent);
  const ids = members.members.map((m) => m.user_id);
  assert.ok(ids.includes(state.user_id) && ids.includes(testEnv().humanId), JSON.stringify(ids));

  const page = await client.events(agent, { limit: 5 });
  assert.ok(Array.isArray(page.events) && typeof page.next === "string");

  assert.deepEqual(await client.leaveRoom(room, { agent, reason: "done" }), {});
  assert.deepEqual(await client.deleteAgent(agent), {});
  await assert.rejects(client.getAgent(agent), { name: "BridgeError", status: 404 });

  const tokens = await client.listTokens();
  assert.ok(Array.isArray(tokens.tokens));
  const issued = await client.createToken({ name: unique("ts-route"), scopes: ["send"], agents: [`${agent}*`] });
  assert.deepEqual(issued.scopes, ["send"]);
  assert.deepEqual(await client.revokeToken(issued.id), {});

  const found = await client.listAgents({ prefix: agent.slice(0, 6) });
  assert.ok(found.agents.every((a) => a.agent.startsWith(agent.slice(0, 6))), JSON.stringify(found));
  const reading = await client.activity({ replay: 10 });
  assert.ok(reading.summary.totals.requests["2xx"] > 0 && Array.isArray(reading.errors), JSON.stringify(reading));
});
