/**
 * Subscriptions (PROTOCOL §6–7): durable cursors over many streams that wake workers.
 *
 * {@link Subscriptions} manages them and speaks the lease protocol; {@link PullWakeWorker}
 * turns a pull-wake subscription into a work queue (a handler, or an async iterator of
 * {@link Job}s); {@link WebhookVerifier} checks signed webhook deliveries.
 *
 * Delivery is exactly once in the normal case and *at least once* when a worker processes an
 * item and dies (or loses its lease) before its ack lands: the next worker reads again from the
 * last acked offset. A handler makes itself idempotent by storing `(item.stream, item.offset)`
 * with its effects and skipping an item whose offset is not past the stored one. Every item
 * ends at an offset to resume from and starts at its stream's acked offset; an item read again
 * after a crash may hold more than before (the same `startOffset`, the messages handled before
 * first): to skip exactly those, store its `startOffset` and number of messages too.
 */

import * as native from "../native/index.js";
import { DurableStreamError, InvalidArgumentError } from "./errors.js";
import {
  checkSignal,
  extras,
  run,
  sync,
  type HeadersRecord,
  type MaybePromise,
  type ParamsRecord,
} from "./internal.js";
import { DurableStream } from "./stream.js";

/**
 * The body that finishes a webhook wake synchronously: answer 200 with it and
 * `Content-Type: application/json`; the server acks the wake's tail offsets and releases it.
 */
export const WEBHOOK_DONE: string = native.webhookDone();

/** Options of {@link Subscriptions}. */
export interface SubscriptionsOptions {
  /** Headers sent with every request (values may be functions, evaluated per request). */
  headers?: HeadersRecord;
  /** Query parameters sent with every request. */
  params?: ParamsRecord;
}

/** The configuration of a subscription, checked before any request. */
export interface SubscriptionConfig {
  /** Pull-wake: the stream-root-relative wake stream (it must exist). */
  wakeStream?: string;
  /** Webhook: the receiver URL (https, or http to 127.0.0.x / localhost). */
  webhookUrl?: string;
  /** A glob over stream-root-relative paths (`*` one segment, `**` any number). */
  pattern?: string;
  /** Explicit stream-root-relative paths. */
  streams?: string[];
  /** The lease, 1000 to 600000 ms (server default 30000). */
  leaseTtlMs?: number;
  /** A description. */
  description?: string;
}

/** A stream linked to a subscription and its cursor. */
export interface StreamLink {
  path: string;
  /** `glob` or `explicit`. */
  linkType: string;
  /** The last processed offset (inclusive). */
  ackedOffset: string;
}

/** A subscription as the server reports it. */
export interface Subscription {
  id: string;
  /** `pull-wake` or `webhook`. */
  kind: string;
  pattern: string | undefined;
  streams: StreamLink[];
  wakeStream: string | undefined;
  webhookUrl: string | undefined;
  signing: { alg: string; kid: string; jwksUrl: string } | undefined;
  leaseTtlMs: number;
  createdAt: string | undefined;
  status: string | undefined;
  description: string | undefined;
  /** The acked offset of a linked stream, or `undefined` when it is not linked. */
  ackedOffset(path: string): string | undefined;
}

/** What {@link Subscriptions.create} returns. */
export interface CreatedSubscription extends Subscription {
  /** True when this call created it (201); false when an identical one existed (200). */
  created: boolean;
}

/** One stream of a wake. */
export interface WakeStream {
  path: string;
  linkType: string;
  ackedOffset: string;
  tailOffset: string;
  hasPending: boolean;
}

/** The answer to an ack, heartbeat or callback. */
export interface AckResult {
  ok: boolean;
  /** After `done`: whether the server made another wake for work still pending. */
  nextWake: boolean;
}

/** Acknowledgements: stream path → last processed offset (inclusive). */
export type Acks = Record<string, string>;

/** Options of a single call. */
export interface CallOptions {
  /** Cancels the call. */
  signal?: AbortSignal;
}

/** Options of {@link Subscriptions.ack} and {@link Subscriptions.callback}. */
export interface AckOptions extends CallOptions {
  /** Finish the wake (release the lease after acking). */
  done?: boolean;
}

function subscription(n: native.NativeSubscription): Subscription {
  const streams = n.streams.map((l) => ({ ...l }));
  return {
    id: n.id,
    kind: n.kind,
    pattern: n.pattern ?? undefined,
    streams,
    wakeStream: n.wakeStream ?? undefined,
    webhookUrl: n.webhookUrl ?? undefined,
    signing: n.signing ? { ...n.signing } : undefined,
    leaseTtlMs: n.leaseTtlMs,
    createdAt: n.createdAt ?? undefined,
    status: n.status ?? undefined,
    description: n.description ?? undefined,
    ackedOffset: (path: string) => streams.find((s) => s.path === path)?.ackedOffset,
  };
}

/**
 * A held wake: a claim (pull-wake) or a verified webhook delivery. Its token stays in the
 * native layer: it never appears in an inspection, a log or an error.
 */
export class Wake {
  /** @internal */
  readonly native: native.NativeWake;
  readonly subscriptionId: string;
  readonly wakeId: string;
  /** The fencing generation. */
  readonly generation: number;
  /** The lease (claims only). */
  readonly leaseTtlMs: number | undefined;
  /** Where to call back (webhook deliveries only). */
  readonly callbackUrl: string | undefined;
  readonly streams: WakeStream[];

  /** @internal */
  constructor(n: native.NativeWake) {
    this.native = n;
    this.subscriptionId = n.subscriptionId;
    this.wakeId = n.wakeId;
    this.generation = n.generation;
    this.leaseTtlMs = n.leaseTtlMs ?? undefined;
    this.callbackUrl = n.callbackUrl ?? undefined;
    this.streams = n.streams.map((s) => ({ ...s }));
  }
}

function acksOf(acks: Acks | undefined): native.NativeAck[] {
  return Object.entries(acks ?? {}).map(([stream, offset]) => ({ stream, offset }));
}

/**
 * Subscriptions of the streams under one stream root (the URL prefix under which the server's
 * streams live, e.g. `http://127.0.0.1:4437/v1/stream/`); paths are relative to it.
 *
 * @example
 * ```ts
 * const subs = new Subscriptions("http://127.0.0.1:4437/v1/stream/")
 * await subs.create("billing", { wakeStream: "wake/billing", pattern: "orders/*" })
 * await subs.worker("billing", "worker-1", "wake/billing").run(async (item) => {
 *   console.log(item.stream, item.messages)
 * }, { signal })
 * ```
 */
export class Subscriptions {
  readonly #native: native.NativeSubscriptions;
  readonly #options: SubscriptionsOptions;

  constructor(root: string | URL, options: SubscriptionsOptions = {}) {
    this.#options = options;
    this.#native = sync(
      () => new native.NativeSubscriptions(String(root), extras(options.headers, options.params)),
    );
  }

  /** The stream root URL (ends with `/`). */
  get root(): string {
    return this.#native.root;
  }

  /** The URL of the server's webhook signing keys (`__ds/jwks.json` under the root). */
  get jwksUrl(): string {
    return this.#native.jwksUrl;
  }

  /** A stream handle for a root-relative path, with this handle's headers and parameters. */
  stream(path: string): DurableStream {
    return new DurableStream({
      url: this.root + path,
      headers: this.#options.headers,
      params: this.#options.params,
    });
  }

  /**
   * Creates the subscription, or confirms an identical one (`created` tells which). Another
   * configuration under the same id fails with a `FetchError` of code `CONFLICT_EXISTS`.
   */
  async create(
    id: string,
    config: SubscriptionConfig,
    options: CallOptions = {},
  ): Promise<CreatedSubscription> {
    const cfg: native.NativeSubscriptionConfig = { ...config };
    const n = await run(checkSignal(options.signal), (t) => this.#native.create(id, cfg, t));
    return { ...subscription(n), created: n.created ?? false };
  }

  /** The subscription with its linked streams and acked offsets. */
  async get(id: string, options: CallOptions = {}): Promise<Subscription> {
    return subscription(await run(checkSignal(options.signal), (t) => this.#native.get(id, t)));
  }

  /** Deletes the subscription (idempotent). */
  async delete(id: string, options: CallOptions = {}): Promise<void> {
    await run(checkSignal(options.signal), (t) => this.#native.delete(id, t));
  }

  /** Links explicit streams (at their current tail; idempotent). */
  async addStreams(id: string, streams: string[], options: CallOptions = {}): Promise<void> {
    await run(checkSignal(options.signal), (t) => this.#native.addStreams(id, streams, t));
  }

  /** Removes an explicit link (a glob link stays; idempotent). */
  async removeStream(id: string, path: string, options: CallOptions = {}): Promise<void> {
    await run(checkSignal(options.signal), (t) => this.#native.removeStream(id, path, t));
  }

  /**
   * Claims a pull-wake subscription's lease. Rejects with `AlreadyClaimedError` or
   * `NoPendingWorkError` when there is nothing to take.
   */
  async claim(id: string, worker: string, options: CallOptions = {}): Promise<Wake> {
    return new Wake(
      await run(checkSignal(options.signal), (t) => this.#native.claim(id, worker, t)),
    );
  }

  /**
   * Acks progress on a claimed wake; without acks and `done` it is a heartbeat. A stale wake
   * rejects with `FencedError` and acks nothing, unless the request was retried after an
   * attempt whose answer was lost (its message then says so): that attempt may have landed.
   */
  async ack(wake: Wake, acks?: Acks, options: AckOptions = {}): Promise<AckResult> {
    return run(checkSignal(options.signal), (t) =>
      this.#native.ack(wake.native, acksOf(acks), options.done ?? false, t),
    );
  }

  /**
   * Answers a webhook wake asynchronously through its `callbackUrl` (which must be on the
   * stream root's origin). A stale wake rejects with `FencedError`.
   */
  async callback(wake: Wake, acks?: Acks, options: AckOptions = {}): Promise<AckResult> {
    return run(checkSignal(options.signal), (t) =>
      this.#native.callback(wake.native, acksOf(acks), options.done ?? false, t),
    );
  }

  /** Gives a claimed wake back without acking; pending work is woken again. */
  async release(wake: Wake, options: CallOptions = {}): Promise<void> {
    await run(checkSignal(options.signal), (t) => this.#native.release(wake.native, t));
  }

  /** A pull-wake worker named `worker` for subscription `id`; see {@link PullWakeWorker}. */
  worker(id: string, worker: string, wakeStream: string, options: WorkerOptions = {}): PullWakeWorker {
    return new PullWakeWorker(this.#native, id, worker, wakeStream, options);
  }
}

/** Options of {@link Subscriptions.worker}. */
export interface WorkerOptions {
  /** Follow the wake stream from this offset (default: its tail). */
  fromOffset?: string;
  /** Send heartbeats while a handler runs (default true; off only to test lease expiry). */
  heartbeats?: boolean;
}

/**
 * The messages of one stream handed to a handler: what one answer of the server held, gathered
 * whole. `offset` is where it ends, a point to resume from; the worker acks it once the handler
 * returns, before it hands over the stream's next item.
 */
export interface WorkItem {
  /** Stream-root-relative path. */
  stream: string;
  /** The offset this item starts after: its stream's acked offset. */
  startOffset: string;
  /** The offset this item ends at (the ack point, a point to resume from). */
  offset: string;
  /** JSON streams: the messages (empty otherwise). */
  messages: unknown[];
  /** Other streams: the bytes (empty for JSON streams). */
  data: Uint8Array;
}

/** One delivery of a {@link JobQueue}: answer it with {@link Job.ack} or {@link Job.fail}. */
export class Job {
  readonly item: WorkItem;
  readonly #native: native.NativeJob;

  /** @internal */
  constructor(n: native.NativeJob) {
    this.#native = n;
    const raw = n.messagesJson;
    this.item = {
      stream: n.stream,
      startOffset: n.startOffset,
      offset: n.offset,
      messages: raw == null ? [] : (JSON.parse(raw) as unknown[]),
      data: n.data,
    };
  }

  /** Handled: the worker acks `item.offset` and goes on. */
  ack(): void {
    this.#native.ack();
  }

  /** Not handled: the worker releases the wake without acking; it is woken again. */
  fail(reason = "failed"): void {
    this.#native.fail(reason);
  }
}

/**
 * The jobs of a running worker: `for await` over it, answer each job, and {@link stop} it
 * (leaving the loop early stops it too). Stopping releases the wake the worker holds.
 */
export class JobQueue implements AsyncIterable<Job> {
  readonly #queue: Promise<native.NativeWorkQueue>;
  #offset: string | undefined;

  /** @internal */
  constructor(queue: Promise<native.NativeWorkQueue>, signal: AbortSignal | undefined) {
    this.#queue = queue;
    queue.catch(() => undefined);
    if (signal) {
      const onAbort = (): void => this.requestStop();
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
  }

  /** After {@link stop}: the wake-stream offset to resume from (pass it as `fromOffset`). */
  get offset(): string | undefined {
    return this.#offset;
  }

  /**
   * Asks the worker to stop without waiting: the ack in flight lands, no new job comes, the
   * wake is released, and a pending {@link next} resolves to `null`.
   */
  requestStop(): void {
    void this.#queue.then((q) => q.requestStop()).catch(() => undefined);
  }

  /** The next job, or `null` once the worker has stopped. */
  async next(): Promise<Job | null> {
    const q = await run(undefined, () => this.#queue);
    const n = await run(undefined, (t) => q.next(t));
    return n ? new Job(n) : null;
  }

  /** Stops the worker (a held lease is released); resolves to the offset to resume from. */
  async stop(): Promise<string | undefined> {
    const q = await run(undefined, () => this.#queue);
    const off = await run(undefined, () => q.stop());
    if (off != null) this.#offset = off;
    return this.#offset;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Job> {
    try {
      for (;;) {
        const job = await this.next();
        if (!job) return;
        yield job;
      }
    } finally {
      await this.stop();
    }
  }
}

/** Options of {@link PullWakeWorker.run} and {@link PullWakeWorker.jobs}. */
export interface RunOptions {
  /** Stops the worker: it releases what it holds, and `run` resolves. */
  signal?: AbortSignal;
}

/**
 * A pull-wake worker: follows the wake stream (from `fromOffset`, default its tail; work
 * pending from before is claimed at start), claims on every wake, reads each pending stream
 * from its acked offset, hands the items over, acks them, heartbeats while a handler runs, and
 * finishes the wake. A handler error releases the wake without acking (it is woken again after a
 * pause of at least 100 ms, longer while failures go on); a lost lease (`FENCED`) drops the wake
 * without acking.
 */
export class PullWakeWorker {
  readonly #subs: native.NativeSubscriptions;
  readonly #args: [string, string, string, WorkerOptions];

  /** @internal */
  constructor(
    subs: native.NativeSubscriptions,
    id: string,
    worker: string,
    wakeStream: string,
    options: WorkerOptions,
  ) {
    this.#subs = subs;
    this.#args = [id, worker, wakeStream, options];
  }

  /** Starts the worker and returns its job queue. */
  jobs(options: RunOptions = {}): JobQueue {
    const signal = checkSignal(options.signal);
    const [id, worker, wakeStream, o] = this.#args;
    const queue = this.#subs.jobs(id, worker, wakeStream, o.fromOffset, o.heartbeats);
    return new JobQueue(queue, signal);
  }

  /**
   * Runs `handler` on every item until `signal` aborts; a handler that throws (or rejects)
   * fails the item. Resolves to the wake-stream offset to resume from.
   */
  async run(
    handler: (item: WorkItem) => MaybePromise<unknown>,
    options: RunOptions = {},
  ): Promise<string | undefined> {
    if (typeof handler !== "function") {
      throw new InvalidArgumentError("run needs a handler function");
    }
    const signal = checkSignal(options.signal);
    const queue = this.jobs();
    // The stop is requested between items, never between a handler's return and its answer:
    // the item just handled gets its ack.
    let busy = false;
    const onAbort = (): void => {
      if (!busy) queue.requestStop();
    };
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const job of queue) {
        busy = true;
        try {
          await handler(job.item);
          job.ack();
        } catch (e) {
          job.fail(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
        } finally {
          busy = false;
        }
        if (signal?.aborted) queue.requestStop();
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    return queue.offset;
  }
}

/** Request headers as web frameworks give them. */
export type IncomingHeaders =
  | Headers
  | Record<string, string | string[] | undefined>
  | Map<string, string>;

function signatureOf(headers: IncomingHeaders): string | undefined {
  if (headers instanceof Headers) return headers.get("webhook-signature") ?? undefined;
  const entries = headers instanceof Map ? headers.entries() : Object.entries(headers);
  for (const [k, v] of entries) {
    if (k.toLowerCase() === "webhook-signature") return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

/** Options of {@link WebhookVerifier}. */
export interface WebhookVerifierOptions {
  /** How far a delivery's timestamp may be from now (default 300000 ms). */
  replayWindowMs?: number;
}

/**
 * Verifies signed webhook deliveries, for any web framework: pass the request headers and the
 * raw body bytes, get a verified {@link Wake}. The Ed25519 key is chosen by `kid` from the
 * server's JWK Set (fetched once, cached, fetched again on an unknown `kid` at most every
 * 10 s). On `InvalidSignatureError` answer 401; after processing answer 200 with
 * {@link WEBHOOK_DONE}, or 200 with `{}` and finish later with {@link Subscriptions.callback}.
 */
export class WebhookVerifier {
  readonly #native: native.NativeWebhookVerifier;

  constructor(jwksUrl: string | URL, options: WebhookVerifierOptions = {}) {
    this.#native = sync(
      () => new native.NativeWebhookVerifier(String(jwksUrl), options.replayWindowMs),
    );
  }

  /**
   * Verifies a delivery (`nowMs`: the time to check against, for tests). Rejects with
   * `InvalidSignatureError`, whose `check` says which check failed.
   */
  async verify(
    headers: IncomingHeaders,
    body: Uint8Array,
    options: { nowMs?: number } = {},
  ): Promise<Wake> {
    if (!(body instanceof Uint8Array)) {
      throw new InvalidArgumentError("verify takes the raw request body as bytes (a Buffer or Uint8Array), exactly as received");
    }
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const sig = signatureOf(headers);
    return new Wake(await run(undefined, () => this.#native.verify(sig, buf, options.nowMs)));
  }
}
