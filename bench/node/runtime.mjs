// Contender "node-runtime" (a control, overload only): the node-binding contender's paced loop
// with no client at all. It builds every message at the offered rate and drops it, so its RSS
// growth is what Node itself (V8's heap under this allocation rate) adds, which the
// node-binding's growth includes. Writes nothing to the stream. Protocol: bench/README.md.
import { jsonMessage, main, now, rssSampler, sleep } from "./protocol.mjs"

const handlers = {
  async overload(job) {
    const rss = rssSampler()
    const heap = { peakHeapTotal: 0 }
    const heapTimer = setInterval(() => {
      heap.peakHeapTotal = Math.max(heap.peakHeapTotal, process.memoryUsage().heapTotal)
    }, 100)
    const t = now()
    let sent = 0
    // Kept so that building the messages cannot be optimised away.
    let chars = 0
    while (sent < job.count) {
      const due = Math.min(job.count, Math.floor(((now() - t) / 1000) * job.rate))
      while (sent < due) {
        chars += jsonMessage(sent, job.msg_bytes).length
        sent++
      }
      await sleep(1)
    }
    const seconds = (now() - t) / 1000
    rss.stop()
    clearInterval(heapTimer)
    return {
      messages: job.count,
      bytes: chars,
      seconds,
      rss_samples: rss.samples,
      extra: {
        offer_seconds: seconds,
        offered_rate: job.count / seconds,
        peak_heap_total_mib: Math.round(heap.peakHeapTotal / 2 ** 20),
      },
    }
  },
}

await main(handlers)
