/** Bounded waits for the tests: nothing waits forever. */

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(ms: number, what: string | (() => string), promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const name = typeof what === "string" ? what : what();
      reject(new Error(`timed out after ${ms} ms waiting for ${name}`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next `n` values of `iterator`, within `ms` in all. */
export async function take<T>(iterator: AsyncIterator<T>, n: number, ms: number, what: string): Promise<T[]> {
  const got: T[] = [];
  const all = (async () => {
    while (got.length < n) {
      const next = await iterator.next();
      if (next.done) throw new Error(`the iteration ended after ${got.length} of ${n} ${what}`);
      got.push(next.value);
    }
    return got;
  })();
  return within(ms, () => `${n} ${what} (got ${got.length}: ${JSON.stringify(got)})`, all);
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Values of `iterator` up to and including the first that `last` accepts, keeping those
 * that `keep` accepts, within `ms`.
 */
export async function until<T>(
  iterator: AsyncIterator<T>,
  keep: (value: T) => boolean,
  last: (value: T) => boolean,
  ms: number,
  what: string,
): Promise<T[]> {
  const kept: T[] = [];
  const all = (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) throw new Error(`the iteration ended before ${what}`);
      if (keep(next.value)) kept.push(next.value);
      if (last(next.value)) return kept;
    }
  })();
  return within(ms, () => `${what} (kept so far: ${JSON.stringify(kept)})`, all);
}

/** The first value `probe` answers (not undefined), asked every `everyMs` until `ms` have passed. */
export async function eventually<T>(
  ms: number,
  what: string | (() => string),
  probe: () => Promise<T | undefined>,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${typeof what === "string" ? what : what()}`);
    }
    await delay(everyMs);
  }
}
