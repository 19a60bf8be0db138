// Type-checked (tsc --strict --noEmit) against the generated declarations; not run.
import {
  type ByteChunk,
  DurableStream,
  DurableStreamError,
  type HeadResult,
  IdempotentProducer,
  type JsonBatch,
  StaleEpochError,
  stream,
  StreamClosedError,
  type StreamResponse,
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
