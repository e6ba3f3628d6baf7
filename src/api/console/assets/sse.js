// Server-Sent Events over fetch: EventSource cannot send an Authorization header, so the
// stream is read from a fetch's ReadableStream and parsed here. A stream that ends (the
// daemon's stream life, a restart) is opened again with `Last-Event-ID`.

import { url, headers, errorOf } from "./api.js";

const RETRY_MS = 1000;

/** Parses one SSE block into `{event, data, id}`; null for a comment-only block. */
export function parseBlock(block) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  return data.length ? { event, data: data.join("\n"), id } : null;
}

/**
 * Follows `path` until `stop()`: `onEvent(event, data, id)` per event (data parsed as
 * JSON), `onState("open" | "retrying" | "refused", detail)` as the connection changes.
 * A refusal (4xx) stops following.
 */
export function follow(path, { onEvent, onState = () => {}, lastId = null }) {
  const controller = new AbortController();
  let stopped = false;
  let last = lastId;
  const run = async () => {
    while (!stopped) {
      try {
        const extra = { Accept: "text/event-stream" };
        if (last !== null) extra["Last-Event-ID"] = last;
        const res = await fetch(url(path), {
          headers: headers(extra),
          cache: "no-store",
          signal: controller.signal,
        });
        if (!res.ok) {
          const error = await errorOf(res);
          if (res.status < 500 && res.status !== 429) {
            onState("refused", error);
            return;
          }
          onState("retrying", error);
        } else {
          onState("open");
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let end;
            while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
              const parsed = parseBlock(block);
              if (!parsed) continue;
              if (parsed.id !== null) last = parsed.id;
              let data = parsed.data;
              try {
                data = JSON.parse(parsed.data);
              } catch {
                // Not JSON: passed on as text.
              }
              onEvent(parsed.event, data, parsed.id);
            }
          }
          if (!stopped) onState("retrying", new Error("the stream ended"));
        }
      } catch (e) {
        if (stopped) return;
        onState("retrying", e);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  };
  run();
  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
