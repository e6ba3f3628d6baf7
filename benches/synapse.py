#!/usr/bin/env python3
"""W5's helper for scripts/bench (standard library only, loopback only): a real Synapse.

Subcommands:
  setup     registers a human with the shared secret, creates agents a0..aN-1 and one room
            per agent through the bridge API (the agent joined, the human invited), and
            joins the human to each; prints `BENCH rooms=<id,...> human_token=<token>`.
  settle    waits until the daemon's count of received events stops moving (Synapse has
            pushed everything it had queued); prints `BENCH events=<count>`.
  deliveries
            waits until the daemon's inbox deliveries reach a number, polling its
            /metrics every 5 ms; prints `BENCH reached=<0|1> at=<unix time> value=<count>`.
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request


def call(method, url, token=None, body=None, timeout=30):
    if not url.startswith(("http://127.", "http://localhost")):
        sys.exit(f"synapse.py: refusing non-loopback target {url}")
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            text = res.read().decode()
    except urllib.error.HTTPError as e:
        sys.exit(f"synapse.py: {method} {url} answered {e.code}: {e.read().decode()[:300]}")
    return json.loads(text) if text.startswith(("{", "[")) else text


def register_human(hs, secret, localpart):
    nonce = call("GET", f"{hs}/_synapse/admin/v1/register")["nonce"]
    password = "bench-" + nonce[:16]
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]))
    body = {"nonce": nonce, "username": localpart, "password": password, "admin": False,
            "mac": mac.hexdigest()}
    return call("POST", f"{hs}/_synapse/admin/v1/register", body=body)


def setup(args):
    human = register_human(args.hs, args.secret, "bench-human")
    bridge = f"{args.as_url}/bridge/v1"
    rooms = []
    for i in range(args.agents):
        call("PUT", f"{bridge}/agents/a{i}", args.bridge_token, {"display_name": f"Agent {i}"})
        room = call("POST", f"{bridge}/provision/rooms", args.bridge_token,
                    {"name": f"W5 room {i}", "invite": [human["user_id"]], "agents": [f"a{i}"]})
        if room.get("agent_errors"):
            sys.exit(f"synapse.py: agent a{i} did not join: {room['agent_errors']}")
        room_id = room["room_id"]
        call("POST", f"{args.hs}/_matrix/client/v3/rooms/{room_id.replace('!', '%21')}/join",
             human["access_token"], {})
        rooms.append(room_id)
    print(f"BENCH rooms={','.join(rooms)} human_token={human['access_token']}")


def metric(url, name):
    req = urllib.request.Request(f"{url}/metrics")
    with urllib.request.urlopen(req, timeout=10) as res:
        total = 0.0
        for line in res.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def settle(args):
    last, still_since = metric(args.as_url, "mosaic_as_events_received_total"), time.monotonic()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = metric(args.as_url, "mosaic_as_events_received_total")
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= args.quiet:
            break
    print(f"BENCH events={int(last)}")


def deliveries(args):
    deadline = time.monotonic() + args.timeout
    value = metric(args.as_url, "mosaic_as_inbox_deliveries_total")
    while value < args.target and time.monotonic() < deadline:
        time.sleep(0.005)
        value = metric(args.as_url, "mosaic_as_inbox_deliveries_total")
    print(f"BENCH reached={int(value >= args.target)} at={time.time():.6f} value={int(value)}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--hs", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--as-url", required=True)
    s.add_argument("--bridge-token", required=True)
    s.add_argument("--agents", type=int, default=16)
    q = sub.add_parser("settle")
    q.add_argument("--as-url", required=True)
    q.add_argument("--quiet", type=float, default=1.0)
    q.add_argument("--timeout", type=float, default=120)
    d = sub.add_parser("deliveries")
    d.add_argument("--as-url", required=True)
    d.add_argument("--target", type=float, required=True)
    d.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()
    {"setup": setup, "settle": settle, "deliveries": deliveries}[args.cmd](args)


if __name__ == "__main__":
    main()
