// Control "node-plain" for catchup-read: the plainest Node reader, network included.
// GETs the catch-up with node:http from offset -1 until the server says the reader is up to
// date, joins each body's chunks, decodes it and parses it with JSON.parse: no client, no checks
// beyond the parser's, no retries. The clock covers the requests, the parse and the checksum,
// as it does for a client. node:http, not fetch(): on this benchmark's catch-up it was the
// faster of the two (BENCHMARKS.md, round 20).
import http from "node:http"
import { main, now } from "./protocol.mjs"

/** One GET: the body as a string, and the headers that say where to go on. */
function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        if (res.statusCode !== 200) {
          res.resume()
          reject(new Error(`GET ${url}: HTTP ${res.statusCode}`))
          return
        }
        const parts = []
        res.on("data", (d) => parts.push(d))
        res.on("end", () => resolve({ text: Buffer.concat(parts).toString("utf8"), headers: res.headers }))
        res.on("error", reject)
      })
      .on("error", reject)
  })
}

await main({
  async "catchup-read"(job) {
    const t = now()
    const bodies = []
    let offset = "-1"
    for (;;) {
      const { text, headers } = await get(`${job.stream_url}?offset=${encodeURIComponent(offset)}`)
      bodies.push(JSON.parse(text))
      offset = headers["stream-next-offset"]
      if (headers["stream-up-to-date"] === "true" || !offset) break
    }
    const all = bodies.length === 1 ? bodies[0] : bodies.flat()
    let checksum = 0
    for (const it of all) checksum += it.i
    const seconds = (now() - t) / 1000
    return { messages: all.length, bytes: all.length * job.msg_bytes, seconds, checksum }
  },
})
