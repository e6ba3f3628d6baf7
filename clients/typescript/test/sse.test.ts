/** The SSE parser on the bridge's framing and on what the standard allows besides. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser } from "../src/index.js";

test("frames of the bridge's inbox stream, split anywhere", () => {
  const stream =
    ': connected\n\nid: 7\nevent: event\ndata: {"cursor":"7"}\n\n: keep-alive\n\n' +
    'event: gap\ndata: {"gap":true}\n\nid: 8\nevent: event\ndata: {"cursor":"8"}\n\n';
  for (let cut = 0; cut <= stream.length; cut += 1) {
    const parser = new SseParser();
    const frames = [...parser.push(stream.slice(0, cut)), ...parser.push(stream.slice(cut))];
    assert.deepEqual(frames, [
      { event: "event", data: '{"cursor":"7"}', id: "7" },
      { event: "gap", data: '{"gap":true}', id: undefined },
      { event: "event", data: '{"cursor":"8"}', id: "8" },
    ]);
    assert.equal(parser.comments, 2);
  }
});

test("CRLF and CR line ends, multi-line data, no space after the colon, unknown fields", () => {
  const parser = new SseParser();
  const frames = parser.push("data:a\r\ndata: b\r\nretry: 5\r\nfoo\r\n\r\nid:1\rdata:c\r");
  assert.deepEqual(frames, [{ event: "message", data: "a\nb", id: undefined }]);
  // The CR at the end may start a CRLF: the frame ends only with the next line end.
  assert.deepEqual(parser.push("\n"), []);
  assert.deepEqual(parser.push("\n"), [{ event: "message", data: "c", id: "1" }]);
});

test("a frame without data is not dispatched, and an unfinished one waits", () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push("event: nothing\n\nid: 3\n\ndata: x"), []);
  assert.deepEqual(parser.push("\n\n"), [{ event: "message", data: "x", id: undefined }]);
});
