// The same package through require(), run by scripts/test-dist.sh.
// Usage: node quickstart.cjs BASE_URL
const assert = require("node:assert/strict");
const { randomUUID } = require("node:crypto");
const { DurableStream, stream } = require("durable-streams-client");

(async () => {
  const url = `${process.argv[2]}/v1/stream/dist-cjs-${randomUUID()}`;
  const handle = await DurableStream.create({ url, contentType: "text/plain" });
  await handle.append("hello ");
  await handle.append("world");
  const res = await stream({ url, live: false });
  assert.equal(await res.text(), "hello world");
  console.log("node quick start (require): ok");
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
