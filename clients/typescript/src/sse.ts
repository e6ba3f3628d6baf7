/**
 * A parser of Server-Sent Events framing (the `text/event-stream` format of the WHATWG
 * HTML standard), fed with decoded text as it arrives. The bridge writes one frame per
 * inbox item (`id: <cursor>`, `event: event`, `data: <item JSON>`), a frame
 * `event: gap` when retention removed items the reader had not read, and comments
 * (`: connected`, `: keep-alive`) that only show the connection is alive.
 */

/** One dispatched event of the stream. */
export interface SseFrame {
  /** The `event:` field; `message` when the frame has none. */
  event: string;
  /** The `data:` lines, joined with newlines. */
  data: string;
  /** The `id:` field of this frame, when it had one. */
  id: string | undefined;
}

/** Splits a stream of text into frames; keeps partial lines between chunks. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | undefined;
  /** Comments seen so far (keep-alives included). */
  comments = 0;

  /** Takes the next piece of text; answers the frames it completes. */
  push(text: string): SseFrame[] {
    this.buffer += text;
    const frames: SseFrame[] = [];
    let start = 0;
    for (;;) {
      const end = lineEnd(this.buffer, start);
      if (end === undefined) break;
      const frame = this.line(this.buffer.slice(start, end.at));
      if (frame) frames.push(frame);
      start = end.next;
    }
    this.buffer = this.buffer.slice(start);
    return frames;
  }

  private line(line: string): SseFrame | undefined {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) {
      this.comments += 1;
      return undefined;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.id = value;
        break;
      default:
        // `retry` and unknown fields: the client decides its own reconnection delays.
        break;
    }
    return undefined;
  }

  private dispatch(): SseFrame | undefined {
    const frame: SseFrame = {
      event: this.event === "" ? "message" : this.event,
      data: this.data.join("\n"),
      id: this.id,
    };
    const had = this.data.length > 0;
    this.data = [];
    this.event = "";
    this.id = undefined;
    return had ? frame : undefined;
  }
}

/**
 * Where the line starting at `start` ends (`at`) and the next begins (`next`); undefined
 * when the buffer holds no complete line yet. A CR at the very end may be the first half
 * of a CRLF, so it waits for the next chunk.
 */
function lineEnd(buffer: string, start: number): { at: number; next: number } | undefined {
  for (let i = start; i < buffer.length; i += 1) {
    const c = buffer.charCodeAt(i);
    if (c === 10) return { at: i, next: i + 1 };
    if (c === 13) {
      if (i + 1 === buffer.length) return undefined;
      return { at: i, next: buffer.charCodeAt(i + 1) === 10 ? i + 2 : i + 1 };
    }
  }
  return undefined;
}
