// Contender "ts-client": the TypeScript client @durable-streams/client (version pinned in
// package.json), used the way its README shows. Protocol: bench/README.md.
import { DurableStream, IdempotentProducer, stream } from "@durable-streams/client"
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

function producerFor(job, handle, errors) {
  return new IdempotentProducer(handle, job.producer_id, {
    lingerMs: job.linger_ms,
    maxBatchBytes: job.batch_bytes,
    maxInFlight: job.max_in_flight,
    onError: (e) => errors.push(e),
  })
}

// Messages are built before the clock starts; the clock covers append() ... flush().
async function producerBurst(job) {
  const msgs = Array.from({ length: job.count }, (_, i) => message(job, i))
  const errors = []
  const producer = producerFor(job, handleFor(job), errors)
  const t = now()
  for (const m of msgs) producer.append(m)
  await producer.flush()
  const seconds = (now() - t) / 1000
  await producer.detach()
  if (errors.length) throw new Error(`producer reported ${errors.length} errors: ${errors[0]}`)
  return { messages: job.count, bytes: job.count * job.msg_bytes, seconds }
}

const handlers = {
  "producer-json": producerBurst,
  "producer-bytes": producerBurst,

  // DurableStream.append with its defaults (batching on: overlapping appends are coalesced).
  async "append-latency"(job) {
    const handle = handleFor(job)
    const msgs = Array.from({ length: job.count }, (_, i) => jsonMessage(i, job.msg_bytes))
    const { latenciesUs, seconds } = await awaitedOps(job, (i) => handle.append(msgs[i]))
    return { messages: job.count, bytes: job.count * job.msg_bytes, seconds, latencies_us: latenciesUs }
  },

  // subscribeJson, not json(): in 0.2.7 json() does items.push(...parsed) per response, which
  // throws "RangeError: Maximum call stack size exceeded" once one response holds ~10^5+
  // messages (a 1M-message catch-up read is a single response from both servers).
  async "catchup-read"(job) {
    const t = now()
    const res = await stream({ url: job.stream_url, offset: "-1", live: false, json: true })
    let messages = 0
    let checksum = 0
    // `closed` settles when the transfer ends, which can be before the subscriber has seen
    // the data: the batch marked upToDate is the end of the catch-up.
    await new Promise((resolve, reject) => {
      res.subscribeJson((batch) => {
        for (const it of batch.items) {
          messages++
          checksum += it.i
        }
        if (batch.upToDate) resolve()
      })
      res.closed.catch(reject)
    })
    const seconds = (now() - t) / 1000
    return { messages, bytes: messages * job.msg_bytes, seconds, checksum }
  },

  // live: "sse" or "long-poll"; subscribeJson delivers batches.
  async "live-tail"(job, live) {
    const handle = handleFor(job)
    const msgs = Array.from({ length: job.count }, (_, i) => jsonMessage(i, job.msg_bytes))
    const d = new Deliveries(job.count)
    const t = now()
    const res = await stream({ url: job.stream_url, offset: "-1", live, json: true })
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

  // Offers job.rate msgs/s (built on the fly) for job.count messages, then flushes.
  async overload(job) {
    const errors = []
    const producer = producerFor(job, handleFor(job), errors)
    const rss = rssSampler()
    const t = now()
    let sent = 0
    while (sent < job.count) {
      const due = Math.min(job.count, Math.floor(((now() - t) / 1000) * job.rate))
      while (sent < due) producer.append(message(job, sent++))
      await sleep(1)
    }
    const offerSeconds = (now() - t) / 1000
    await producer.flush()
    const seconds = (now() - t) / 1000
    rss.stop()
    await producer.detach()
    if (errors.length) throw new Error(`producer reported ${errors.length} errors: ${errors[0]}`)
    return {
      messages: job.count,
      bytes: job.count * job.msg_bytes,
      seconds,
      rss_samples: rss.samples,
      extra: { offer_seconds: offerSeconds, offered_rate: job.count / offerSeconds },
    }
  },
}

await main(handlers)
