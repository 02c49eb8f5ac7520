import { createServer, Socket, type AddressInfo, type Server } from 'node:net';

/** What the proxy did with one incoming connection. */
export interface ConnectionAttempt {
  /** Sequence number of the attempt, from 1. */
  n: number;
  refused: boolean;
}

/**
 * A TCP proxy between Banyan and a real server (PostgreSQL, MariaDB, the Salesforce emulator),
 * for fault tests: it can refuse new connections, cut the open ones and restore service on
 * command, and it tells the test when a connection attempt arrives, so a cut is timed on what the
 * client does, not on a sleep. A refused connection is reset at once (the client sees ECONNRESET).
 */
export class TcpProxy {
  private readonly open = new Set<Socket>();
  private refusing = 0;
  private waiters: Array<(attempt: ConnectionAttempt) => void> = [];
  private cutAtRequest: (() => void) | undefined;
  /** Every attempt so far, in order. */
  readonly attempts: ConnectionAttempt[] = [];

  private constructor(
    private readonly server: Server,
    private target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on a free port of 127.0.0.1 and forwards to `target` (which may be set later). */
  static async start(target: { host: string; port: number } = { host: '127.0.0.1', port: 0 }): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    return new TcpProxy(server, target);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get host(): string {
    return '127.0.0.1';
  }

  /** `http://127.0.0.1:<port>`, for HTTP servers behind the proxy. */
  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  forwardTo(target: { host: string; port: number }): void {
    this.target = target;
  }

  /** Refuses the next `count` connection attempts (all of them until restore() by default). */
  refuse(count = Infinity): void {
    this.refusing = count;
  }

  /** Destroys every open connection, both sides: what a server crash or a network cut looks like. */
  cut(): void {
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }

  /**
   * Cuts every connection when a client next sends something (that request is not forwarded):
   * a query or call in flight fails, whatever the client's timing. Resolves when it happened.
   */
  cutAtNextRequest(): Promise<void> {
    return new Promise((resolve) => {
      this.cutAtRequest = () => {
        this.cutAtRequest = undefined;
        this.cut();
        resolve();
      };
    });
  }

  /** Accepts connections again. */
  restore(): void {
    this.refusing = 0;
  }

  /** Resolves at the next connection attempt, after the proxy has refused or forwarded it. */
  nextAttempt(): Promise<ConnectionAttempt> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const refused = this.refusing > 0;
    if (refused) this.refusing -= 1;
    const attempt: ConnectionAttempt = { n: this.attempts.length + 1, refused };
    this.attempts.push(attempt);
    if (refused) {
      client.resetAndDestroy();
    } else {
      const upstream = new Socket();
      this.open.add(client);
      this.open.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.open.delete(client);
        this.open.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.connect(this.target.port, this.target.host);
      // Before the pipe's own listener: a cut request must not reach the server.
      client.on('data', () => this.cutAtRequest?.());
      client.pipe(upstream).pipe(client);
    }
    // After the decision, so a waiter that restores or cuts acts on the attempts that follow.
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter(attempt);
  }
}
