// Type-checked (tsc --strict --noEmit) against the generated declarations; not run.
import {
  type AckResult,
  type ByteChunk,
  type CreatedSubscription,
  DurableStream,
  DurableStreamError,
  type HeadResult,
  IdempotentProducer,
  type JsonBatch,
  StaleEpochError,
  stream,
  StreamClosedError,
  type StreamResponse,
  type Wake,
  type WakeStream,
  type WorkItem,
} from "durable-streams-client";

interface Event {
  type: string;
  n: number;
}

export async function usage(url: string, signal: AbortSignal): Promise<number> {
  const handle = await DurableStream.create({
    url,
    contentType: "application/json",
    headers: { authorization: async () => "Bearer t", "x-static": "v" },
    backoffOptions: { maxRetries: 3 },
    signal,
  });
  await handle.append(JSON.stringify({ type: "a", n: 1 }), { seq: "1" });
  const head: HeadResult = await handle.head();
  if (head.exists) console.log(head.offset, head.streamClosed);

  const res: StreamResponse<Event> = await handle.stream<Event>({ live: false });
  const events: Event[] = await res.json();
  for await (const e of (await stream<Event>({ url, live: "long-poll", signal })).jsonStream()) {
    console.log(e.n);
  }
  const unsubscribe: () => void = (await handle.stream<Event>({ live: "sse" })).subscribeJson(
    async (batch: JsonBatch<Event>) => {
      console.log(batch.items.length, batch.offset, batch.upToDate, batch.streamClosed);
    },
  );
  unsubscribe();
  (await handle.stream()).subscribeBytes((c: ByteChunk) => console.log(c.data.byteLength));

  const producer = new IdempotentProducer(handle, "writer", {
    autoClaim: true,
    lingerMs: 5,
    maxBatchBytes: 1 << 20,
    maxInFlight: 4,
    onError: (e: Error) => console.error(e),
  });
  producer.append(JSON.stringify({ type: "b", n: 2 }));
  const lines: string[] = ['{"type":"d","n":4}', '{"type":"d","n":5}'];
  for (let i = producer.appendMany(lines); i < lines.length; i = producer.appendMany(lines, i)) {
    await producer.ready(Buffer.byteLength(lines[i]!));
  }
  producer.append(new Uint8Array([123, 125]));
  await producer.ready(1024);
  const delivery = await producer.append(JSON.stringify({ type: "c", n: 3 })).wait();
  console.log(delivery.offset, delivery.duplicate);
  await producer.flush();
  const { finalOffset } = await producer.close();

  try {
    await handle.append("x");
  } catch (e) {
    if (e instanceof StreamClosedError) console.log(e.finalOffset);
    else if (e instanceof StaleEpochError) console.log(e.currentEpoch);
    else if (e instanceof DurableStreamError) console.log(e.code, e.status);
  }
  return events.length + (finalOffset ? 1 : 0);
}

export async function subscriptionUsage(
  root: string,
  signal: AbortSignal,
  headers: Headers,
  body: Buffer,
): Promise<string | undefined> {
  const { Subscriptions, WebhookVerifier, FencedError, InvalidSignatureError, WEBHOOK_DONE } =
    await import("durable-streams-client");
  const subs = new Subscriptions(root, { headers: { authorization: () => "Bearer t" } });
  const created: CreatedSubscription = await subs.create(
    "billing",
    { wakeStream: "wake/billing", pattern: "orders/*", leaseTtlMs: 30_000 },
    { signal },
  );
  const acked: string | undefined = created.ackedOffset("orders/eu");
  const wake: Wake = await subs.claim("billing", "w1");
  const pending: WakeStream[] = wake.streams.filter((s) => s.hasPending);
  try {
    const r: AckResult = await subs.ack(wake, { [pending[0]!.path]: pending[0]!.tailOffset }, { done: true });
    console.log(r.ok, r.nextWake, acked);
  } catch (e) {
    if (e instanceof FencedError) console.log(e.subscriptionCode);
  }
  const worker = subs.worker("billing", "w1", "wake/billing", { fromOffset: "-1" });
  for await (const job of worker.jobs({ signal })) {
    const item: WorkItem = job.item;
    if (item.messages.length > 0) job.ack();
    else job.fail("empty");
  }
  try {
    const hook: Wake = await new WebhookVerifier(subs.jwksUrl).verify(headers, body);
    console.log(hook.callbackUrl, WEBHOOK_DONE);
  } catch (e) {
    if (e instanceof InvalidSignatureError) console.log(e.check);
  }
  return worker.run(async (item: WorkItem) => console.log(item.stream, item.offset), { signal });
}
