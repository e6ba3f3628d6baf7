/**
 * A TCP proxy in front of the daemon that breaks connections on demand: `cutAll` resets
 * every open connection (a network failure mid-stream), `dropNextAnswer` lets the next
 * request through but closes its connection when the answer starts (the request was
 * done, the client never hears of it).
 */

import net from "node:net";

export class BreakingProxy {
  private readonly sockets = new Set<net.Socket>();
  private dropNext = false;
  /** Connections closed by `cutAll` and `dropNextAnswer`. */
  broken = 0;

  private constructor(
    private readonly server: net.Server,
    readonly url: string,
  ) {}

  /** A proxy on a free loopback port to `target` (`http://host:port`). */
  static async start(target: string): Promise<BreakingProxy> {
    const to = new URL(target);
    let proxy: BreakingProxy | undefined;
    const server = net.createServer((client) => proxy?.relay(client, to));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    proxy = new BreakingProxy(server, `http://127.0.0.1:${port}`);
    return proxy;
  }

  /** Resets every open connection. */
  cutAll(): void {
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.broken += 1;
  }

  /** The next answer's first bytes close its connection instead of arriving. */
  dropNextAnswer(): void {
    this.dropNext = true;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket, to: URL): void {
    const upstream = net.connect(Number(to.port), to.hostname);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("close", () => {
        this.sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on("error", () => undefined);
    }
    client.on("data", (chunk) => upstream.write(chunk));
    upstream.on("data", (chunk) => {
      if (this.dropNext) {
        this.dropNext = false;
        this.broken += 1;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
  }
}
