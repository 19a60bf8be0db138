// Contender "node-binding": our npm package durable-streams-client (the Rust core through
// napi-rs), linked from ../../node by package.json and built by bench/run.sh. Used the way its
// README shows. Protocol: bench/README.md.
//
// Unlike the TypeScript client, our IdempotentProducer.append never waits: with
// maxBufferedBytes held it throws BUFFER_FULL at once. The producer scenarios then await
// ready() and append the same message again, so no message is ever dropped and memory stays
// bounded by the buffer.
import { openSync, writeSync } from "node:fs"
import { DurableStream, DurableStreamError, IdempotentProducer, stream } from "durable-streams-client"
import {
  Deliveries,
  awaitedOps,
  bytesMessage,
  jsonMessage,
  main,
  now,
  pacedWriter,
  rssSampler,
  sleep,
} from "./protocol.mjs"

const isJson = (job) => job.content_type.startsWith("application/json")
const message = (job, i) => (isJson(job) ? jsonMessage(i, job.msg_bytes) : bytesMessage(i, job.msg_bytes))
const handleFor = (job) => new DurableStream({ url: job.stream_url, contentType: job.content_type })
const byteLength = (m) => (typeof m === "string" ? Buffer.byteLength(m) : m.byteLength)
const isBufferFull = (e) => e instanceof DurableStreamError && e.code === "BUFFER_FULL"

function producerFor(job, errors) {
  return new IdempotentProducer(handleFor(job), job.producer_id, {
    lingerMs: job.linger_ms,
    maxBatchBytes: job.batch_bytes,
    maxInFlight: job.max_in_flight,
    onError: (e) => errors.push(e),
  })
}

/** Appends every message in order; on BUFFER_FULL waits for room and retries the same message. */
async function appendAll(producer, msgs) {
  let i = 0
  let waits = 0
  while (i < msgs.length) {
    try {
      for (; i < msgs.length; i++) producer.append(msgs[i])
    } catch (e) {
      if (!isBufferFull(e)) throw e
      waits++
      await producer.ready(byteLength(msgs[i]))
    }
  }
  return waits
}

/** The batch form: appendMany from the first message not taken; on a full buffer, await ready(). */
async function appendAllMany(producer, msgs) {
  let waits = 0
  for (let i = producer.appendMany(msgs); i < msgs.length; i = producer.appendMany(msgs, i)) {
    waits++
    await producer.ready(byteLength(msgs[i]))
  }
  return waits
}

// Contender node-binding-many: the same program with appendMany.
const MANY = process.argv.slice(2, -1).includes("--many")
// Contender node-binding-field: catch-up parses only the member the checksum uses.
const FIELD = process.argv.slice(2, -1).includes("--field")

// With PERF_CTL=<fifo>, the producer scenarios' timed phase is bracketed by "enable"/"disable"
// written to it, so that `perf record -D -1 --control=fifo:<fifo> ...` profiles only that phase
// (not the building of the messages before it).
const perfCtl = process.env.PERF_CTL ? openSync(process.env.PERF_CTL, "w") : undefined
const perf = (cmd) => perfCtl !== undefined && writeSync(perfCtl, `${cmd}\n`)

// Messages are built before the clock starts; the clock covers creating the producer,
// append() ... flush().
async function producerBurst(job) {
  const msgs = Array.from({ length: job.count }, (_, i) => message(job, i))
  const errors = []
  perf("enable")
  const t = now()
  const producer = producerFor(job, errors)
  const waits = await (MANY ? appendAllMany : appendAll)(producer, msgs)
  await producer.flush()
  const seconds = (now() - t) / 1000
  perf("disable")
  await producer.detach()
  if (errors.length) throw new Error(`producer reported ${errors.length} errors: ${errors[0]}`)
  return { messages: job.count, bytes: job.count * job.msg_bytes, seconds, extra: { buffer_full_waits: waits } }
}

const handlers = {
  "producer-json": producerBurst,
  "producer-bytes": producerBurst,

  // Awaited DurableStream.append, `concurrency` callers on one handle.
  async "append-latency"(job) {
    const handle = handleFor(job)
    const msgs = Array.from({ length: job.count }, (_, i) => jsonMessage(i, job.msg_bytes))
    const { latenciesUs, seconds } = await awaitedOps(job, (i) => handle.append(msgs[i]))
    return { messages: job.count, bytes: job.count * job.msg_bytes, seconds, latencies_us: latenciesUs }
  },

  // stream() from -1, not live; json() checks every message in Rust and parses the array texts
  // with JSON.parse into one array.
  async "catchup-read"(job) {
    const t = now()
    const res = await stream({ url: job.stream_url, offset: "-1", live: false })
    let checksum = 0
    let items
    if (FIELD) {
      items = await res.json({ field: "i" })
      for (const i of items) checksum += i
    } else {
      items = await res.json()
      for (const it of items) checksum += it.i
    }
    const seconds = (now() - t) / 1000
    return { messages: items.length, bytes: items.length * job.msg_bytes, seconds, checksum }
  },

  // live: "sse" or "long-poll"; subscribeJson delivers batches.
  async "live-tail"(job, live) {
    const handle = handleFor(job)
    const msgs = Array.from({ length: job.count }, (_, i) => jsonMessage(i, job.msg_bytes))
    const d = new Deliveries(job.count)
    const t = now()
    const res = await stream({ url: job.stream_url, offset: "-1", live })
    res.subscribeJson((batch) => {
      for (const item of batch.items) d.deliver(item)
    })
    res.closed.catch((e) => d.reject(e))
    await Promise.all([pacedWriter(job, d, (i) => handle.append(msgs[i])), d.done])
    const seconds = (now() - t) / 1000
    res.cancel()
    return {
      messages: d.latenciesUs.length,
      bytes: d.latenciesUs.length * job.msg_bytes,
      seconds,
      checksum: d.checksum,
      latencies_us: d.latenciesUs,
    }
  },

  // Offers job.rate msgs/s (built on the fly) for job.count messages, then flushes. The
  // default 32 MiB buffer fills up: append throws BUFFER_FULL, the loop awaits ready() (so the
  // offered rate drops to what the server takes) and memory stays bounded.
  async overload(job) {
    const errors = []
    const producer = producerFor(job, errors)
    const rss = rssSampler()
    // Where the memory is: the V8 heap (JavaScript objects) or outside it (the addon).
    const heap = { peakHeapTotal: 0, peakOutside: 0 }
    const heapTimer = setInterval(() => {
      const m = process.memoryUsage()
      heap.peakHeapTotal = Math.max(heap.peakHeapTotal, m.heapTotal)
      heap.peakOutside = Math.max(heap.peakOutside, m.rss - m.heapTotal)
    }, 100)
    const t = now()
    let sent = 0
    let waits = 0
    while (sent < job.count) {
      const due = Math.min(job.count, Math.floor(((now() - t) / 1000) * job.rate))
      while (sent < due) {
        const m = message(job, sent)
        try {
          producer.append(m)
          sent++
        } catch (e) {
          if (!isBufferFull(e)) throw e
          waits++
          await producer.ready(byteLength(m))
        }
      }
      await sleep(1)
    }
    const offerSeconds = (now() - t) / 1000
    await producer.flush()
    const seconds = (now() - t) / 1000
    rss.stop()
    clearInterval(heapTimer)
    await producer.detach()
    if (errors.length) throw new Error(`producer reported ${errors.length} errors: ${errors[0]}`)
    const mib = (b) => Math.round(b / 2 ** 20)
    return {
      messages: job.count,
      bytes: job.count * job.msg_bytes,
      seconds,
      rss_samples: rss.samples,
      extra: {
        offer_seconds: offerSeconds,
        offered_rate: job.count / offerSeconds,
        buffer_full_waits: waits,
        peak_heap_total_mib: mib(heap.peakHeapTotal),
        peak_rss_outside_heap_mib: mib(heap.peakOutside),
      },
    }
  },
}

await main(handlers)
