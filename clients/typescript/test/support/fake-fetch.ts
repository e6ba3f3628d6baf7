/**
 * A scripted `fetch` for tests of the client's own logic: each call takes the next
 * answer of the script and is recorded (URL, method, headers, body). An answer is a status
 * with a JSON body and headers, or an event stream: chunks of text, then an end, a
 * connection failure, or silence until the request is aborted.
 */

export type Scripted =
  | { status: number; json?: unknown; headers?: Record<string, string> }
  | { stream: string[]; then: "end" | "fail" | "hang" }
  | { refuse: true };

export interface Recorded {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
}

export class FakeFetch {
  readonly calls: Recorded[] = [];
  private readonly script: Scripted[];

  constructor(script: Scripted[]) {
    this.script = [...script];
  }

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const body = typeof init?.body === "string" ? init.body : undefined;
    this.calls.push({ url: new URL(String(input)), method: init?.method ?? "GET", headers, body });
    const next = this.script.shift();
    if (next === undefined) throw new Error(`unscripted call ${init?.method} ${String(input)}`);
    if ("refuse" in next) throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    if ("status" in next) {
      return new Response(next.json === undefined ? null : JSON.stringify(next.json), {
        status: next.status,
        headers: { "content-type": "application/json", ...next.headers },
      });
    }
    return new Response(streamOf(next.stream, next.then, init?.signal ?? undefined), {
      status: 200,
      headers: { "content-type": "text/event-stream" },
    });
  };
}

/** Pull-based, so that a failure comes after every chunk was read (an error drops the queue). */
function streamOf(chunks: string[], then: "end" | "fail" | "hang", signal: AbortSignal | undefined) {
  const encoder = new TextEncoder();
  const left = [...chunks];
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = left.shift();
      if (chunk !== undefined) {
        controller.enqueue(encoder.encode(chunk));
      } else if (then === "end") {
        controller.close();
      } else if (then === "fail") {
        controller.error(new TypeError("terminated: other side closed"));
      } else {
        return new Promise<void>((_, reject) => {
          if (signal?.aborted) reject(signal.reason);
          signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
      }
      return undefined;
    },
  });
}

/** One inbox item's SSE frame, as the bridge writes it. */
export function itemFrame(cursor: number, body = `m${cursor}`): string {
  const item = {
    cursor: String(cursor),
    mentioned: false,
    room_id: "!r:hs",
    event_id: `$e${cursor}`,
    sender: "@h:hs",
    type: "m.room.message",
    content: { body },
    origin_server_ts: 7,
  };
  return `id: ${cursor}\nevent: event\ndata: ${JSON.stringify(item)}\n\n`;
}
