#!/usr/bin/env python3
"""The homeserver's push stream to one appservice registration, simulated (docs/capacity.md).

Synapse sends an appservice one transaction at a time: while events are queued for it, it
takes up to 100 of them (MAX_PERSISTENT_EVENTS_PER_TRANSACTION in
synapse/appservice/scheduler.py), sends them and waits for the answer before the next.
So one registration's inbound rate is bounded by batch / round trip, whatever either side
could do in parallel. This simulates that loop under Poisson arrivals:

  round trip of a transaction of b events = hs_fixed + hs_per_event * b       (homeserver)
                                          + as_fixed + as_per_event * b       (mosaic-as)
                                          + fsync                              (durable commit)

and prints, for rising arrival rates, the mean batch, how busy the stream is and the
latency from an event's arrival at the homeserver's queue to the daemon's answer; then the
rate where the stream saturates. Several registrations (namespaces) are independent streams:
K of them carry K times the rate. Standard library only; deterministic (fixed seed).

  benches/push_stream.py [--as-fixed-us 20] [--as-per-event-us 1.9] [--fsync-us 1000]
                         [--hs-fixed-us 2000] [--hs-per-event-us 30] [--batch 100]
"""

import argparse
import random


def simulate(rate, args, seconds=20.0, seed=7):
    rng = random.Random(seed)
    t, arrivals = 0.0, []
    while t < seconds:
        t += rng.expovariate(rate)
        arrivals.append(t)
    queue_head, now, busy, batches, waits = 0, 0.0, 0.0, [], []
    while queue_head < len(arrivals):
        now = max(now, arrivals[queue_head])
        # Every event that has arrived by now, up to a batch.
        end = queue_head
        while end < len(arrivals) and arrivals[end] <= now and end - queue_head < args.batch:
            end += 1
        b = end - queue_head
        took = (args.hs_fixed_us + args.as_fixed_us + args.fsync_us
                + (args.hs_per_event_us + args.as_per_event_us) * b) / 1e6
        now += took
        busy += took
        batches.append(b)
        waits.extend(now - a for a in arrivals[queue_head:end])
        queue_head = end
    waits.sort()
    pick = lambda p: waits[min(len(waits) - 1, int(p * len(waits)))] * 1000
    return (sum(batches) / len(batches), busy / now, pick(0.5), pick(0.99))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--as-fixed-us", type=float, default=20.0)
    p.add_argument("--as-per-event-us", type=float, default=1.9)
    p.add_argument("--fsync-us", type=float, default=1000.0)
    p.add_argument("--hs-fixed-us", type=float, default=2000.0)
    p.add_argument("--hs-per-event-us", type=float, default=30.0)
    p.add_argument("--batch", type=int, default=100)
    args = p.parse_args()
    full = (args.hs_fixed_us + args.as_fixed_us + args.fsync_us
            + (args.hs_per_event_us + args.as_per_event_us) * args.batch) / 1e6
    ceiling = args.batch / full
    print(f"round trip of a full transaction ({args.batch} events): {full * 1000:.2f} ms; "
          f"one stream saturates at {ceiling:,.0f} events/s")
    print("events/s  mean batch  stream busy  latency p50 ms  p99 ms")
    for share in (0.05, 0.25, 0.5, 0.75, 0.9, 0.97):
        rate = share * ceiling
        batch, busy, p50, p99 = simulate(rate, args)
        print(f"{rate:8,.0f}  {batch:10.1f}  {busy * 100:10.0f} %  {p50:14.2f}  {p99:6.2f}")
    daemon = args.as_fixed_us + args.as_per_event_us * args.batch + args.fsync_us
    print(f"mosaic-as's part of a full round trip: {100 * daemon / (full * 1e6):.0f} %")


if __name__ == "__main__":
    main()
