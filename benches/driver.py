#!/usr/bin/env python3
"""Bench-only helper for scripts/bench (standard library only, loopback only).

Subcommands:
  create-agents  PUT /bridge/v1/agents/<prefix><i> for i in [from, from+count), over
                 several keep-alive connections; prints the rate and errors.
  join           one homeserver transaction of m.room.member join events that joins
                 <prefix>0..<prefix>N-1 to a room.
  fanout         W3 latency: one long-poll reader per sampled agent, then transactions of
                 one human message each, sent in a closed loop; measures the time from the
                 start of the PUT to each reader's wake: the kernel's receive time of
                 the answer on the reader's socket (SO_TIMESTAMPNS), so the driver's own
                 work on the other 99 answers is not counted; the driver-observed
                 time (first readable moment) is reported beside it.
  get            one timed GET (e.g. an agent whose actor starts on demand).

Every result is printed as one line `BENCH key=value ...` that scripts/bench parses.
"""

import argparse
import http.client
import json
import selectors
import socket
import sys
import threading
import time
import struct
import urllib.parse

# Linux: a receive timestamp (struct timespec, CLOCK_REALTIME) with each recvmsg.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("qq")


def parse_target(url):
    u = urllib.parse.urlsplit(url)
    host = u.hostname or "127.0.0.1"
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        sys.exit(f"driver: refusing non-loopback target {host}")
    return host, u.port or 80


def bench_line(**kv):
    parts = []
    for k, v in kv.items():
        if isinstance(v, float):
            v = f"{v:.3f}"
        parts.append(f"{k}={v}")
    print("BENCH " + " ".join(parts), flush=True)


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# ---------------------------------------------------------------- create-agents


def create_agents(args):
    host, port = parse_target(args.url)
    headers = {
        "Authorization": f"Bearer {args.token}",
        "Content-Type": "application/json",
    }
    lock = threading.Lock()
    state = {"next": args.start, "ok": 0, "errors": 0, "first_error": ""}
    end = args.start + args.count

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=60)
        while True:
            with lock:
                i = state["next"]
                if i >= end:
                    break
                state["next"] = i + 1
            try:
                conn.request("PUT", f"/bridge/v1/agents/{args.prefix}{i}", body=b"{}", headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException) as e:
                ok, body = False, str(e).encode()
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            with lock:
                if ok:
                    state["ok"] += 1
                else:
                    state["errors"] += 1
                    if not state["first_error"]:
                        state["first_error"] = body[:200].decode(errors="replace")
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if state["first_error"]:
        print(f"driver: first error: {state['first_error']}", file=sys.stderr)
    bench_line(created=state["ok"], errors=state["errors"], seconds=elapsed,
               rate=state["ok"] / elapsed if elapsed > 0 else 0.0)
    return 0 if state["errors"] == 0 else 1


# ---------------------------------------------------------------- join


def member_event(event_id, room, user):
    return {
        "event_id": event_id,
        "room_id": room,
        "sender": user,
        "type": "m.room.member",
        "state_key": user,
        "origin_server_ts": int(time.time() * 1000),
        "content": {"membership": "join"},
    }


def put_transaction(conn, hs_token, txn_id, events):
    body = json.dumps({"events": events}).encode()
    conn.request("PUT", f"/_matrix/app/v1/transactions/{urllib.parse.quote(txn_id, safe='')}",
                 body=body, headers={"Authorization": f"Bearer {hs_token}",
                                     "Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data


def join(args):
    host, port = parse_target(args.url)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    nonce = f"{time.time_ns()}"
    errors = 0
    batch = 500
    for lo in range(0, args.count, batch):
        events = [member_event(f"$join-{nonce}-{i}", args.room, f"@agent-{args.prefix}{i}:{args.server}")
                  for i in range(lo, min(args.count, lo + batch))]
        status, data = put_transaction(conn, args.hs_token, f"join-{nonce}-{lo}", events)
        if status != 200:
            errors += 1
            print(f"driver: join transaction answered {status}: {data[:200]!r}", file=sys.stderr)
    bench_line(joined=args.count, errors=errors)
    return 0 if errors == 0 else 1


# ---------------------------------------------------------------- get


def get(args):
    host, port = parse_target(args.url)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    started = time.perf_counter()
    conn.request("GET", args.path, headers={"Authorization": f"Bearer {args.token}"})
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - started
    bench_line(status=resp.status, ms=elapsed * 1000.0)
    return 0 if resp.status == 200 else 1


# ---------------------------------------------------------------- fanout


class RawConn:
    """A keep-alive HTTP/1.1 connection driven by a selector loop.

    The first readable moment after a request is stamped before anything is parsed, so
    that handling one reader never delays another's timestamp."""

    def __init__(self, host, port, name):
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.name = name
        self.buf = b""
        self.first_byte = None
        # CLOCK_REALTIME ns at which the kernel received the answer's first bytes.
        self.kernel_rx_ns = None

    def send(self, data):
        self.buf = b""
        self.first_byte = None
        self.kernel_rx_ns = None
        self.sock.setblocking(True)
        self.sock.sendall(data)
        self.sock.setblocking(False)

    def feed(self):
        """Reads what is there; returns (status, body) once a whole response is in."""
        try:
            chunk, ancdata, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(TIMESPEC.size))
        except BlockingIOError:
            return None
        if not chunk:
            raise ConnectionError(f"{self.name}: connection closed")
        if not self.buf and self.kernel_rx_ns is None:
            for level, kind, data in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
                    sec, nsec = TIMESPEC.unpack_from(data)
                    self.kernel_rx_ns = sec * 1_000_000_000 + nsec
        self.buf += chunk
        head_end = self.buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = self.buf[:head_end].decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length = None
        for line in head[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
            elif k.strip().lower() == "transfer-encoding" and "chunked" in v.lower():
                raise ConnectionError(f"{self.name}: chunked answers are not handled")
        if length is None:
            raise ConnectionError(f"{self.name}: answer without Content-Length")
        body_start = head_end + 4
        if len(self.buf) - body_start < length:
            return None
        body = self.buf[body_start:body_start + length]
        self.buf = self.buf[body_start + length:]
        return status, body


def http_request(method, path, host, headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def fanout(args):
    host, port = parse_target(args.url)
    hostport = f"{host}:{port}"
    bridge = {"Authorization": f"Bearer {args.bridge_token}"}
    hs = {"Authorization": f"Bearer {args.hs_token}", "Content-Type": "application/json"}
    sel = selectors.DefaultSelector()
    errors = 0

    def poll_request(slug, since, timeout_ms):
        return http_request("GET", f"/bridge/v1/agents/{slug}/events?since={since}&timeout_ms={timeout_ms}&limit=100",
                            hostport, bridge)

    def blocking_answer(c):
        while True:
            got = c.feed()
            if got is not None:
                return got
            sel_one = selectors.DefaultSelector()
            sel_one.register(c.sock, selectors.EVENT_READ)
            sel_one.select(timeout=30)
            sel_one.close()

    # Readers: find each agent's current cursor, then park a long-poll.
    slugs = [f"{args.prefix}{i}" for i in range(args.sample)]
    readers = {}
    cursors = {}
    for slug in slugs:
        c = RawConn(host, port, slug)
        c.send(poll_request(slug, "", 0))
        status, body = blocking_answer(c)
        if status != 200:
            sys.exit(f"driver: events of {slug} answered {status}: {body[:200]!r}")
        cursors[slug] = json.loads(body)["next"]
        readers[slug] = c
    for slug, c in readers.items():
        c.send(poll_request(slug, cursors[slug], 30000))
        sel.register(c.sock, selectors.EVENT_READ, slug)
    sender = RawConn(host, port, "sender")
    sel.register(sender.sock, selectors.EVENT_READ, None)
    time.sleep(0.2)  # let every long-poll reach its wait

    nonce = f"{time.time_ns()}"
    latencies = []  # seconds, one per (reader, message): kernel receive time - PUT start
    observed = []  # the same, as the driver saw it (first readable moment)
    firsts, lasts = [], []  # per message: the first and the last reader woken
    put_latencies = []
    deliveries = 0
    messages = 0
    started = time.perf_counter()
    warm_until = started + args.warmup
    stop_at = warm_until + args.duration
    measured_from = None
    kernel_stamps = True
    n = 0
    while True:
        now = time.perf_counter()
        if now >= stop_at:
            break
        measuring = now >= warm_until
        if measuring and measured_from is None:
            measured_from = now
        n += 1
        event_id = f"$fan-{nonce}-{n}"
        event = {
            "event_id": event_id,
            "room_id": args.room,
            "sender": f"@human:{args.server}",
            "type": "m.room.message",
            "origin_server_ts": int(time.time() * 1000),
            "content": {"msgtype": "m.text", "body": f"fan-out message {n}"},
        }
        body = json.dumps({"events": [event]}).encode()
        waiting = set(slugs)
        put_done = False
        this_msg = []
        put = http_request("PUT", f"/_matrix/app/v1/transactions/fan-{nonce}-{n}", hostport, hs, body)
        t0_ns = time.time_ns()
        t0 = time.perf_counter()
        sender.send(put)
        deadline = t0 + 10.0
        while waiting or not put_done:
            ready = sel.select(timeout=max(0.0, deadline - time.perf_counter()))
            stamp = time.perf_counter()
            if not ready:
                errors += 1
                print(f"driver: message {n}: {len(waiting)} readers not woken, put done: {put_done}",
                      file=sys.stderr)
                return_code = 1
                bench_line(error="timeout")
                return return_code
            for key, _ in ready:
                c = readers[key.data] if key.data is not None else sender
                if c.first_byte is None:
                    c.first_byte = stamp
            for key, _ in ready:
                slug = key.data
                c = readers[slug] if slug is not None else sender
                got = c.feed()
                if got is None:
                    continue
                status, rbody = got
                if slug is None:
                    put_done = True
                    if status != 200:
                        errors += 1
                    if measuring:
                        put_latencies.append(c.first_byte - t0)
                    continue
                if status != 200:
                    errors += 1
                    print(f"driver: reader {slug} got {status}: {rbody[:200]!r}", file=sys.stderr)
                    waiting.discard(slug)
                    continue
                answer = json.loads(rbody)
                ids = [e["event_id"] for e in answer["events"]]
                cursors[slug] = answer["next"]
                woke_at = c.first_byte
                rx_ns = c.kernel_rx_ns
                c.send(poll_request(slug, cursors[slug], 30000))
                if event_id in ids:
                    waiting.discard(slug)
                    if measuring:
                        observed.append(woke_at - t0)
                        if rx_ns is None:
                            kernel_stamps = False
                            this_msg.append(woke_at - t0)
                        else:
                            this_msg.append((rx_ns - t0_ns) / 1e9)
                        deliveries += 1
        if measuring:
            messages += 1
            latencies.extend(this_msg)
            firsts.append(min(this_msg))
            lasts.append(max(this_msg))
        if args.pause_ms > 0:
            time.sleep(args.pause_ms / 1000.0)
    elapsed = time.perf_counter() - (measured_from or started)
    ms = 1000.0
    bench_line(
        messages=messages,
        readers=len(slugs),
        deliveries=deliveries,
        seconds=elapsed,
        msg_rate=messages / elapsed if elapsed > 0 else 0.0,
        wake_p50_ms=percentile(latencies, 50) * ms,
        wake_p99_ms=percentile(latencies, 99) * ms,
        wake_max_ms=(max(latencies) if latencies else 0.0) * ms,
        stamps="kernel" if kernel_stamps else "driver",
        first_p50_ms=percentile(firsts, 50) * ms,
        first_p99_ms=percentile(firsts, 99) * ms,
        last_p50_ms=percentile(lasts, 50) * ms,
        last_p99_ms=percentile(lasts, 99) * ms,
        observed_p50_ms=percentile(observed, 50) * ms,
        observed_p99_ms=percentile(observed, 99) * ms,
        put_p50_ms=percentile(put_latencies, 50) * ms,
        put_p99_ms=percentile(put_latencies, 99) * ms,
        errors=errors,
    )
    return 0 if errors == 0 and messages > 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("create-agents")
    c.add_argument("--url", required=True)
    c.add_argument("--token", required=True)
    c.add_argument("--prefix", required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--start", type=int, default=0)
    c.add_argument("--conns", type=int, default=16)

    j = sub.add_parser("join")
    j.add_argument("--url", required=True)
    j.add_argument("--hs-token", required=True)
    j.add_argument("--room", required=True)
    j.add_argument("--prefix", required=True)
    j.add_argument("--count", type=int, required=True)
    j.add_argument("--server", default="bench.local")

    g = sub.add_parser("get")
    g.add_argument("--url", required=True)
    g.add_argument("--token", required=True)
    g.add_argument("--path", required=True)

    f = sub.add_parser("fanout")
    f.add_argument("--url", required=True)
    f.add_argument("--hs-token", required=True)
    f.add_argument("--bridge-token", required=True)
    f.add_argument("--room", required=True)
    f.add_argument("--prefix", required=True)
    f.add_argument("--sample", type=int, required=True)
    f.add_argument("--duration", type=float, default=15.0)
    f.add_argument("--warmup", type=float, default=3.0)
    f.add_argument("--pause-ms", type=float, default=0.0)
    f.add_argument("--server", default="bench.local")

    args = p.parse_args()
    handler = {"create-agents": create_agents, "join": join, "get": get, "fanout": fanout}[args.cmd]
    sys.exit(handler(args))


if __name__ == "__main__":
    main()
