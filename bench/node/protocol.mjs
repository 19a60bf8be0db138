// The contender protocol, Node side (bench/README.md): parse the job, build the benchmark
// messages, pace appends, sample RSS, print the outcome. Shared by every Node contender.

/** The job the driver passes as the last argument (JSON). */
export function readJob() {
  const raw = process.argv[process.argv.length - 1]
  return JSON.parse(raw)
}

/**
 * JSON message `i`, padded with `x` to `size` bytes; identical to bench/rust/src/msg.rs. Built
 * by `JSON.stringify`, as an application builds its messages. Node 20's V8 returns a text of
 * this size as a shallow cons string (`%DebugPrint` says CONS_ONE_BYTE_STRING_TYPE), which a
 * client's first native read flattens (napi and Buffer.write both do), as it would an
 * application's. (Building it by concatenation made a deep cons string, far dearer to flatten.)
 */
export function jsonMessage(i, size) {
  const user = `u${i % 1000}`
  const head = `{"i":${i},"type":"bench.event","user":"${user}","p":"`.length
  const p = "x".repeat(Math.max(0, size - head - 2))
  return JSON.stringify({ i, type: "bench.event", user, p })
}

/** Binary message `i`: `i` as big-endian u64, then `a + i % 26` repeated; as in msg.rs. */
export function bytesMessage(i, size) {
  const v = new Uint8Array(Math.max(8, size)).fill(97 + (i % 26))
  new DataView(v.buffer).setBigUint64(0, BigInt(i))
  return v
}

export const now = () => performance.now()
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Collects live deliveries: checks order, computes latencies from the send times. */
export class Deliveries {
  constructor(count) {
    this.count = count
    this.sent = new Float64Array(count).fill(-1)
    this.latenciesUs = []
    this.checksum = 0
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }
  markSent(i) {
    this.sent[i] = now()
  }
  deliver(item) {
    const i = item.i
    const expected = this.latenciesUs.length
    if (i !== expected) return this.reject(new Error(`expected message ${expected}, got ${i}`))
    if (!(this.sent[i] >= 0)) return this.reject(new Error(`message ${i} delivered before sent`))
    this.latenciesUs.push(Math.round((now() - this.sent[i]) * 1000))
    this.checksum += i
    if (this.latenciesUs.length >= this.count) this.resolve()
  }
}

/** Live-tail writer: waits 200 ms for the reader, then calls `append(i)` at `rate` per second. */
export async function pacedWriter(job, deliveries, append) {
  await sleep(200)
  const start = now()
  const interval = 1000 / Math.max(1, job.rate)
  for (let i = 0; i < job.count; i++) {
    const wait = start + i * interval - now()
    if (wait > 0) await sleep(wait)
    deliveries.markSent(i)
    await append(i)
  }
}

/** Runs `count` awaited ops from `concurrency` callers; returns latencies (µs) and seconds. */
export async function awaitedOps(job, op) {
  let next = 0
  const latenciesUs = []
  const start = now()
  const worker = async () => {
    for (;;) {
      const i = next++
      if (i >= job.count) return
      const t = now()
      await op(i)
      latenciesUs.push(Math.round((now() - t) * 1000))
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, job.concurrency) }, worker))
  return { latenciesUs, seconds: (now() - start) / 1000 }
}

/** RSS samples `[seconds, KiB]` every 100 ms until `stop()` is called. */
export function rssSampler() {
  const start = now()
  const samples = []
  const take = () => samples.push([(now() - start) / 1000, Math.round(process.memoryUsage.rss() / 1024)])
  take()
  const timer = setInterval(take, 100)
  return {
    samples,
    stop() {
      clearInterval(timer)
      take()
    },
  }
}

/** Runs the handler for the job's scenario and prints the outcome; exits non-zero on error. */
export async function main(handlers) {
  const job = readJob()
  const name = job.scenario
  const key = name.startsWith("append-") ? "append-latency" : name.startsWith("live-") ? "live-tail" : name
  const handler = handlers[key]
  const timer = setTimeout(() => {
    process.stderr.write(`timed out after ${job.timeout_s} s\n`)
    process.exit(3)
  }, job.timeout_s * 1000)
  try {
    if (!handler) throw new Error(`scenario ${name} is not implemented by this contender`)
    const outcome = await handler(job, name === "live-sse" ? "sse" : "long-poll")
    clearTimeout(timer)
    process.stdout.write(JSON.stringify({ ok: true, ...outcome }) + "\n")
    process.exit(0)
  } catch (e) {
    process.stderr.write(`${e && e.stack ? e.stack : e}\n`)
    process.exit(1)
  }
}
