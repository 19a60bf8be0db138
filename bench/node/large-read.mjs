// large-read (bench/large-read.sh): reads a JSON stream from the start with the Node binding
// through jsonStream() (form "stream", the default) or json() with its limit raised (form
// "json"), or its bytes through body() (form "body": messages counts bytes, checksum is their
// sum, taken after the clock stops), and prints the messages, a checksum and the peak RSS as
// one JSON line.
import { stream } from "durable-streams-client";

const url = process.argv[2];
const form = process.argv[3] ?? "stream";
const before = process.resourceUsage().maxRSS;
const start = performance.now();
let messages = 0;
let checksum = 0;
const res = await stream({
  url,
  offset: "-1",
  live: false,
  maxReadBytes: Number.MAX_SAFE_INTEGER,
});
let seconds;
if (form === "body") {
  const bytes = await res.body();
  seconds = (performance.now() - start) / 1000;
  messages = bytes.length;
  for (const b of bytes) checksum += b;
} else if (form === "json") {
  for (const item of await res.json()) {
    messages += 1;
    checksum += item.i;
  }
} else {
  for await (const item of res.jsonStream()) {
    messages += 1;
    checksum += item.i;
  }
}
console.log(
  JSON.stringify({
    client: "node-binding",
    form: { json: "json()", body: "body()" }[form] ?? "jsonStream()",
    messages,
    checksum,
    seconds: seconds ?? (performance.now() - start) / 1000,
    rss_before_kib: before,
    peak_rss_kib: process.resourceUsage().maxRSS,
  }),
);
