// The JavaScript-side cost of one IdempotentProducer.append: times N appends of a 100-byte
// message (strings as the benchmark builds them, flat strings, Buffers) against trivial calls
// into the addon as baselines. Not a benchmark contender; run it by hand:
//
//   node bench/node/append-cost.mjs [--n 100000] [--rounds 5] [--only TEXT] [--package DIR]
//                                   [--url http://127.0.0.1:PORT/v1/stream/x]
//
// Without --url the producer points at a port nothing listens on and never sends: linger and
// batch size are huge, so every message stays in the producer and only append itself is
// measured (the process exits without flushing). With --url (an existing JSON stream, or one
// the script creates) it uses the benchmark's settings and flushes after each round, untimed.
// Prints one line per case: the median over the rounds of the JavaScript thread's CPU time per
// call (and the best round), and of the wall time (which a busy machine inflates), then JSON.
// To profile only the timed calls (not the warm-up round, which builds the messages):
//   mkfifo /tmp/ctl; PERF_CTL=/tmp/ctl perf record -D -1 --control=fifo:/tmp/ctl -g \
//     node --perf-basic-prof bench/node/append-cost.mjs --only "append(string), flat"
import { openSync, readFileSync, writeSync } from "node:fs"
import { createRequire } from "node:module"
import { jsonMessage } from "./protocol.mjs"

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const N = Number(opt("n", "100000"))
const ROUNDS = Number(opt("rounds", "5"))
const URL_ARG = opt("url", undefined)
const ONLY = opt("only", undefined)
const SIZE = 100
// --package DIR: another build of the package (e.g. an older commit's node/), for before/after.
const PKG = opt("package", undefined)
const pkgJson = PKG ? `${PKG.replace(/\/$/, "")}/package.json` : "durable-streams-client/package.json"
const require = createRequire(import.meta.url)
const pkgDir = require.resolve(pkgJson).replace(/package\.json$/, "")
const { DurableStream, IdempotentProducer } = require(`${pkgDir}dist/index.js`)

// The addon itself, for the cases below the TypeScript layer (package-internal, measurement only).
const native = require(`${pkgDir}native/index.js`)

const url = URL_ARG ?? "http://127.0.0.1:9/v1/stream/append-cost"
const handle = new DurableStream({ url, contentType: "application/json" })
if (URL_ARG) await handle.create({ contentType: "application/json" })

const settings = URL_ARG
  ? { lingerMs: 5, maxBatchBytes: 1 << 20, maxInFlight: 5 }
  : { lingerMs: 1e9, maxBatchBytes: 1 << 30, maxInFlight: 5 }
let producers = 0
const newProducer = () =>
  new IdempotentProducer(handle, `append-cost-${process.pid}-${producers++}`, {
    ...settings,
    maxBufferedBytes: 1 << 30,
  })
const newNativeProducer = () =>
  new native.NativeProducer(handle.native, `append-cost-${process.pid}-${producers++}`, {
    ...settings,
    maxBufferedBytes: 1 << 30,
  })

// The benchmark's messages (JSON.stringify output: flat strings; see protocol.mjs); flat: a
// copy of each, made by Buffer (to compare with messages made another way); bufs: Buffers of
// the same bytes. Built on first use, so that a case run alone (--only, e.g. under a profiler)
// builds only its own.
const lazy = (make) => {
  let v
  return () => (v ??= make())
}
const benchMsgs = lazy(() => Array.from({ length: N }, (_, i) => jsonMessage(i, SIZE)))
const flatMsgs = lazy(() => benchMsgs().map((s) => Buffer.from(s).toString("latin1")))
const bufMsgs = lazy(() => benchMsgs().map((s) => Buffer.from(s)))

/**
 * Nanoseconds the calling (JavaScript) thread has run on a CPU, from the scheduler
 * (/proc/thread-self/schedstat): unlike the wall clock it does not count the time other
 * processes of a busy machine took the core, nor the producer's own threads.
 */
const threadCpuNs = () => Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0])

// With PERF_CTL=<fifo>, the timed calls are bracketed by "enable"/"disable" written to it, so
// that `perf record -D -1 --control=fifo:<fifo> ...` profiles only them.
const perfCtl = process.env.PERF_CTL ? openSync(process.env.PERF_CTL, "w") : undefined
const perf = (cmd) => perfCtl !== undefined && writeSync(perfCtl, `${cmd}\n`)

/** Times `body(ctx)` (N calls) after `ctx = setup()`; returns [wall, thread CPU] ns per call. */
async function time(setup, body, teardown, warmUp = false) {
  const ctx = setup()
  if (!warmUp) perf("enable")
  const c0 = threadCpuNs()
  const t0 = process.hrtime.bigint()
  body(ctx)
  const wall = Number(process.hrtime.bigint() - t0) / N
  const cpu = (threadCpuNs() - c0) / N
  if (!warmUp) perf("disable")
  if (teardown) await teardown(ctx)
  return [wall, cpu]
}

const flushAll = URL_ARG ? async (p) => p.flush() : undefined

const loop = (f) => (ctx) => {
  let x = 0
  for (let i = 0; i < N; i++) x += f(ctx, i)
  if (x < 0) throw new Error("unreachable")
}
// appendMany: N messages in batches of 1,000 (one call each); reported per message.
const many = (msgs) => (p) => {
  const all = msgs()
  for (let i = 0; i < N; i += 1000) {
    const chunk = all.slice(i, i + 1000)
    if (p.appendMany(chunk) !== chunk.length) throw new Error("appendMany stopped early")
  }
}
const hasAppendMany = typeof IdempotentProducer.prototype.appendMany === "function"

const cases = [
  ["empty loop (baseline)", () => null, loop((_, i) => i)],
  ["producer.epoch getter (TS getter -> addon getter)", newProducer, loop((p) => p.epoch)],
  ["NativeProducer.epoch getter (addon getter only)", newNativeProducer, loop((p) => p.epoch)],
  ["producer.append(string), built as the benchmark does", newProducer, (p) => {
    const msgs = benchMsgs()
    for (let i = 0; i < N; i++) p.append(msgs[i])
  }, flushAll],
  ["producer.append(string), flat", newProducer, (p) => {
    const flat = flatMsgs()
    for (let i = 0; i < N; i++) p.append(flat[i])
  }, flushAll],
  ["producer.append(one string, repeated)", newProducer, (p) => {
    const m = Buffer.from(jsonMessage(0, SIZE)).toString("latin1")
    for (let i = 0; i < N; i++) p.append(m)
  }, flushAll],
  ...(typeof native.producerAppendText === "function"
    ? [["native.producerAppendText(slot, string), flat (addon call only)", newNativeProducer, (p) => {
        const flat = flatMsgs()
        const slot = p.slot
        for (let i = 0; i < N; i++) native.producerAppendText(slot, flat[i])
      }]]
    : []),
  ["producer.append(Buffer)", newProducer, (p) => {
    const bufs = bufMsgs()
    for (let i = 0; i < N; i++) p.append(bufs[i])
  }, flushAll],
  ["NativeProducer.append(string), flat (class method)", newNativeProducer, (p) => {
    const flat = flatMsgs()
    for (let i = 0; i < N; i++) p.append(flat[i])
  }, flushAll],
  ...(hasAppendMany
    ? [
        ["producer.appendMany(strings), per message", newProducer, many(flatMsgs), flushAll],
        ["producer.appendMany(Buffers), per message", newProducer, many(bufMsgs), flushAll],
      ]
    : []),
]

process.stderr.write(
  `append-cost: N=${N}, rounds=${ROUNDS}, ${URL_ARG ? `server ${URL_ARG}` : "no server (nothing sent)"}, node ${process.version}\n`,
)
const results = []
for (const [name, setup, body, teardown] of cases) {
  if (ONLY && !name.includes(ONLY)) continue
  await time(setup, body, teardown, true) // warm-up (JIT), builds the messages
  const wall = []
  const cpu = []
  for (let r = 0; r < ROUNDS; r++) {
    const [w, c] = await time(setup, body, teardown)
    wall.push(w)
    cpu.push(c)
  }
  const med = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const row = { case: name, cpu_ns: Math.round(med(cpu)), cpu_best_ns: Math.round(cpu[0]), wall_ns: Math.round(med(wall)) }
  results.push(row)
  console.log(
    `${name.padEnd(52)} cpu ${String(row.cpu_ns).padStart(5)} ns/call (best ${row.cpu_best_ns}), wall ${row.wall_ns}`,
  )
}
console.log(JSON.stringify({ n: N, rounds: ROUNDS, server: URL_ARG ?? null, results }))
// Without a server the producers hold every message: exit without flushing them.
process.exit(0)
