#!/usr/bin/env python3
"""A small round-robin TCP proxy: one address in front of several mosaic-as replicas.

    rr-proxy.py --listen 127.0.0.1:9000 127.0.0.1:9001 127.0.0.1:9002

Each incoming connection goes to the next backend in turn (per connection, not per HTTP
request: a client that keeps its connection open stays on one replica, as behind a
Kubernetes Service). A backend that refuses the connection is skipped for that connection,
so a replica that was stopped does not fail new connections while another one is up. Bytes
are copied both ways untouched; half-closes are passed on. One line per connection on
stderr with --verbose. Stops on SIGINT or SIGTERM. Python 3.10+, standard library only.

scripts/run-local --replicas N starts it; the tests may start it too.
"""

import argparse
import asyncio
import itertools
import signal
import sys

CONNECT_TIMEOUT_S = 5.0
CHUNK = 64 * 1024


def address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class Proxy:
    def __init__(self, backends: list[tuple[str, int]], verbose: bool):
        self.backends = backends
        # Where the next connection starts looking: advances by one per connection.
        self.turn = itertools.cycle(range(len(backends)))
        self.verbose = verbose
        # The connections being served. asyncio keeps only weak references to tasks, and
        # drops its own one to a handler when the client side closes first: without this
        # set, a handler still copying the backend's side could be collected mid-way.
        self.live: set[asyncio.Task] = set()

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"rr-proxy: {message}", file=sys.stderr, flush=True)

    async def connect(self):
        """Opens a connection to the backend whose turn it is, or to the next one up."""
        first = next(self.turn)
        for i in range(len(self.backends)):
            host, port = self.backends[(first + i) % len(self.backends)]
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
                )
                return (host, port), reader, writer
            except (OSError, asyncio.TimeoutError) as e:
                self.log(f"backend {host}:{port} unreachable ({e or 'timeout'}), trying the next")
        return None

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        task = asyncio.current_task()
        self.live.add(task)
        try:
            await self.serve(client_r, client_w)
        except asyncio.CancelledError:
            pass  # the proxy is stopping: the connection just closes
        finally:
            self.live.discard(task)

    async def serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        peer = client_w.get_extra_info("peername")
        backend = await self.connect()
        if backend is None:
            self.log(f"{peer}: no backend reachable, closing")
            client_w.close()
            return
        (host, port), server_r, server_w = backend
        self.log(f"{peer} -> {host}:{port}")
        try:
            await asyncio.gather(
                pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True
            )
        finally:
            for w in (server_w, client_w):
                w.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies until end of stream, then half-closes the other side."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        # One side went away: make the other one notice too.
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", type=address, required=True, help="HOST:PORT to accept on")
    parser.add_argument("--verbose", action="store_true", help="one line per connection")
    parser.add_argument("backends", type=address, nargs="+", help="HOST:PORT of each backend")
    args = parser.parse_args()

    proxy = Proxy(args.backends, args.verbose)
    server = await asyncio.start_server(proxy.handle, *args.listen, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    backends = " ".join(f"{h}:{p}" for h, p in args.backends)
    print(f"rr-proxy: {args.listen[0]}:{args.listen[1]} -> {backends}", file=sys.stderr, flush=True)
    async with server:
        await stop.wait()
        for task in list(proxy.live):
            task.cancel()
        await asyncio.gather(*proxy.live, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
