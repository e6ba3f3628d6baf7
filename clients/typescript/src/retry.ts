/**
 * When to try again and how long to wait: `Retry-After` (seconds or an HTTP date) and the
 * bridge's `retry_after_ms` win over the client's own exponential backoff.
 */

/** Statuses that mean "not done, try later": the request had no effect. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * The wait an answer asks for, in milliseconds: the longer of its `Retry-After` header and
 * its body's `retry_after_ms`; undefined when it names none.
 */
export function retryAfterMs(
  header: string | null,
  bodyMs: number | undefined,
  now: number = Date.now(),
): number | undefined {
  const fromHeader = parseRetryAfter(header, now);
  const fromBody = typeof bodyMs === "number" && bodyMs >= 0 ? bodyMs : undefined;
  if (fromHeader === undefined) return fromBody;
  if (fromBody === undefined) return fromHeader;
  return Math.max(fromHeader, fromBody);
}

/** `Retry-After: 3` or `Retry-After: <HTTP date>`, in milliseconds from `now`. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Exponential backoff with jitter: about `base * 2^attempt`, at most `max`. */
export function backoffMs(attempt: number, base: number, max: number): number {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 20));
  // Half fixed, half random: spreads clients that failed together, never waits nothing.
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Waits `ms`; ends early (resolving) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
