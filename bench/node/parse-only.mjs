// Control "node-parse" for catchup-read: what V8's own JSON parser does with the catch-up.
// Fetches every response body of the catch-up with fetch() and decodes it to a string before
// the clock starts; the clock covers only JSON.parse of each text and the checksum. That is the
// parse a plain Node reader does, without its network time: the reference for how close a Node
// client's read can come to the cost of building the JavaScript objects.
import { main, now } from "./protocol.mjs"

/** GET from offset -1 until the server says the reader is up to date. */
async function fetchBodies(url) {
  const texts = []
  let offset = "-1"
  for (;;) {
    const res = await fetch(`${url}?offset=${encodeURIComponent(offset)}`)
    if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`)
    texts.push(await res.text())
    offset = res.headers.get("stream-next-offset")
    if (res.headers.get("stream-up-to-date") === "true" || !offset) return texts
  }
}

await main({
  async "catchup-read"(job) {
    const texts = await fetchBodies(job.stream_url)
    // The fetch's buffers are garbage by now; collect them before the clock (the manifest
    // starts node with --expose-gc) so the parse does not pay for them.
    globalThis.gc?.()
    const t = now()
    const items = texts.length === 1 ? JSON.parse(texts[0]) : texts.flatMap((text) => JSON.parse(text))
    let checksum = 0
    for (const it of items) checksum += it.i
    const seconds = (now() - t) / 1000
    return { messages: items.length, bytes: items.length * job.msg_bytes, seconds, checksum }
  },
})
