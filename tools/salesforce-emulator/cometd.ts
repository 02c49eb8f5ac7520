import { bearerToken } from './auth.js';
import type { ChangeEventMessage, StoredChangeEvent } from './cdc.js';
import { type EmulatorRequest, type EmulatorResponse, json } from './http.js';
import { randomBase62 } from './ids.js';
import type { Org } from './org.js';

/** Streaming API with CometD accepts API version 37.0 and later. */
const OLDEST_STREAMING_VERSION = 37;

export interface CometdOptions {
  /** How long a `/meta/connect` is held when nothing is to be delivered (Salesforce: 110 s), on the emulator clock. */
  longPollTimeoutMs: number;
  /** A client that does not reconnect within this time after an answer is forgotten (Salesforce: 40 s). */
  clientTimeoutMs: number;
}

type Message = Record<string, unknown> & { channel?: string; id?: string; clientId?: string };

interface HeldConnect {
  reply: Message;
  answer: (messages: Message[]) => void;
  cancelTimer: () => void;
}

interface Client {
  id: string;
  subscriptions: Set<string>;
  queue: ChangeEventMessage[];
  held?: HeldConnect;
  connected: boolean;
  lastSeen: number;
}

const replayInvalid = (replayId: unknown): string =>
  `400::The replayId {${String(replayId)}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.`;

/**
 * The Bayeux server of the Streaming API at `/cometd/XX.X`: long-polling only, change-event channels
 * only, with the replay extension. The long-poll hold runs on the emulator clock (a test moves it
 * instead of waiting); forgetting idle clients runs on real time, since it concerns live connections.
 */
export class CometdServer {
  private clients = new Map<string, Client>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly stopListening: () => void;

  constructor(private readonly org: Org, private readonly opts: CometdOptions) {
    this.stopListening = org.events.onEvent((event) => this.deliver(event));
    this.sweeper = setInterval(() => this.forgetIdleClients(), Math.min(opts.clientTimeoutMs, 5000));
    this.sweeper.unref();
  }

  private advice(): Record<string, unknown> {
    return { interval: 0, timeout: this.opts.longPollTimeoutMs, reconnect: 'retry' };
  }

  async handle(req: EmulatorRequest, version: string, signal: AbortSignal): Promise<EmulatorResponse> {
    if (Number(version) < OLDEST_STREAMING_VERSION) {
      return json(400, [{ error: `400::Unsupported API version. Only API versions '${OLDEST_STREAMING_VERSION}.0' and later are supported. URI format: '/cometd/62.0'`, successful: false }]);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(req.body);
    } catch {
      return json(400, [{ error: '400::Invalid message', successful: false }]);
    }
    const messages = (Array.isArray(parsed) ? parsed : [parsed]) as Message[];
    const token = bearerToken(req.headers.authorization);
    const authenticated = token !== undefined && this.org.sessions.use(token);
    const replies: Message[] = [];
    for (const message of messages) {
      if (!authenticated) replies.push(unauthenticated(message));
      else if (message.channel === '/meta/connect') replies.push(...(await this.connect(message, signal)));
      else replies.push(this.handleMeta(message));
    }
    return json(200, replies);
  }

  private handleMeta(message: Message): Message {
    const base = { channel: message.channel, ...(message.id !== undefined ? { id: message.id } : {}) };
    if (message.channel === '/meta/handshake') {
      const client: Client = { id: randomBase62(28), subscriptions: new Set(), queue: [], connected: false, lastSeen: Date.now() };
      this.clients.set(client.id, client);
      return {
        ...base, version: '1.0', minimumVersion: '1.0', clientId: client.id, supportedConnectionTypes: ['long-polling'],
        successful: true, ext: { replay: true, 'payload.format': true }, advice: this.advice(),
      };
    }
    const client = this.clients.get(message.clientId ?? '');
    if (!client) return unknownClient(base, message.clientId);
    client.lastSeen = Date.now();
    switch (message.channel) {
      case '/meta/subscribe':
        return { ...base, clientId: client.id, ...this.subscribe(client, message) };
      case '/meta/unsubscribe':
        for (const channel of channelsOf(message)) client.subscriptions.delete(channel);
        return { ...base, clientId: client.id, subscription: message.subscription, successful: true };
      case '/meta/disconnect':
        this.drop(client);
        return { ...base, clientId: client.id, successful: true };
      default:
        return { ...base, clientId: client.id, successful: false, error: `403:${String(message.channel)}:Publishing is not supported` };
    }
  }

  private subscribe(client: Client, message: Message): Message {
    const replay = ((message.ext as { replay?: Record<string, unknown> } | undefined)?.replay ?? {});
    const channels = channelsOf(message);
    const backlog: ChangeEventMessage[] = [];
    for (const channel of channels) {
      if (!this.org.events.isChannel(channel)) {
        return { subscription: message.subscription, successful: false, error: `400::The channel you requested to subscribe to does not exist {${channel}}` };
      }
      const requested = replay[channel] ?? -1;
      const result = this.org.events.replay(channel, Number(requested));
      if (!result.ok) return { subscription: message.subscription, successful: false, error: replayInvalid(requested) };
      backlog.push(...result.events.map((e) => this.org.events.toMessage(channel, e)));
    }
    for (const channel of channels) client.subscriptions.add(channel);
    client.queue.push(...backlog);
    this.flush(client);
    return { subscription: message.subscription, successful: true };
  }

  /** Answers at once with what is queued (and always on the first connect); otherwise holds until events or the timeout. */
  private connect(message: Message, signal: AbortSignal): Promise<Message[]> {
    const base = { channel: '/meta/connect', ...(message.id !== undefined ? { id: message.id } : {}) };
    const client = this.clients.get(message.clientId ?? '');
    if (!client) return Promise.resolve([unknownClient(base, message.clientId)]);
    const reply: Message = { ...base, clientId: client.id, successful: true, advice: this.advice() };
    if (client.held) this.answerHeld(client);
    client.lastSeen = Date.now();
    if (!client.connected || client.queue.length > 0 || signal.aborted) {
      client.connected = true;
      return Promise.resolve([...client.queue.splice(0), reply]);
    }
    return new Promise((resolve) => {
      const held: HeldConnect = {
        reply,
        answer: resolve,
        cancelTimer: this.org.clock.schedule(this.opts.longPollTimeoutMs, () => {
          if (client.held === held) this.answerHeld(client);
        }),
      };
      client.held = held;
      // A client that gave up on this request keeps its queue for its next connect.
      signal.addEventListener('abort', () => {
        if (client.held !== held) return;
        held.cancelTimer();
        delete client.held;
        resolve([]);
      }, { once: true });
    });
  }

  private answerHeld(client: Client, reply?: Message): void {
    const held = client.held;
    if (!held) return;
    held.cancelTimer();
    delete client.held;
    client.lastSeen = Date.now();
    held.answer([...client.queue.splice(0), reply ?? held.reply]);
  }

  private flush(client: Client): void {
    if (client.queue.length > 0) this.answerHeld(client);
  }

  private deliver(event: StoredChangeEvent): void {
    for (const client of this.clients.values()) {
      for (const channel of client.subscriptions) {
        if (this.org.events.carries(channel, event)) client.queue.push(this.org.events.toMessage(channel, event));
      }
      this.flush(client);
    }
  }

  /** Forgets a client; a held connect learns it is unknown and is advised to handshake again. */
  private drop(client: Client, finalReply?: Message): void {
    this.clients.delete(client.id);
    if (finalReply) client.queue.length = 0;
    this.answerHeld(client, finalReply);
  }

  private forgetIdleClients(): void {
    const horizon = Date.now() - this.opts.clientTimeoutMs;
    for (const client of this.clients.values()) {
      if (!client.held && client.lastSeen < horizon) this.clients.delete(client.id);
    }
  }

  /** Forgets every client, as after a server-side session timeout: each gets `403::Unknown client` next. */
  expireClients(): void {
    for (const client of [...this.clients.values()]) {
      const heldId = client.held?.reply.id;
      this.drop(client, unknownClient({ channel: '/meta/connect', ...(heldId !== undefined ? { id: heldId } : {}) }, client.id));
    }
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** `/meta/connect` requests being held (answered on events or when the long-poll timeout passes). */
  get heldConnects(): number {
    return [...this.clients.values()].filter((c) => c.held).length;
  }

  close(): void {
    clearInterval(this.sweeper);
    this.stopListening();
    for (const client of [...this.clients.values()]) this.drop(client);
  }
}

function channelsOf(message: Message): string[] {
  const subscription = message.subscription;
  return (Array.isArray(subscription) ? subscription : [subscription]).filter((s): s is string => typeof s === 'string');
}

function unknownClient(base: Message, clientId: unknown): Message {
  return {
    ...base, ...(typeof clientId === 'string' ? { clientId } : {}), successful: false,
    error: '403::Unknown client', advice: { reconnect: 'handshake', interval: 0 },
  };
}

function unauthenticated(message: Message): Message {
  const base = { channel: message.channel, ...(message.id !== undefined ? { id: message.id } : {}) };
  if (message.channel === '/meta/handshake') {
    return { ...base, successful: false, error: '403::Handshake denied', ext: { sfdc: { failureReason: '401::Authentication invalid' } }, advice: { reconnect: 'none' } };
  }
  return { ...base, clientId: message.clientId, successful: false, error: '401::Authentication invalid', advice: { reconnect: 'none', interval: 0 } };
}
