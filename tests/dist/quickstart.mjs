// The Node quick start (ES module), run by scripts/test-dist.sh against the installed tarballs.
// Usage: node quickstart.mjs BASE_URL. Exits non-zero when the data read back differs.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { DurableStream, IdempotentProducer, stream } from "durable-streams-client";

const url = `${process.argv[2]}/v1/stream/dist-node-${randomUUID()}`;
const handle = await DurableStream.create({ url, contentType: "application/json" });
await handle.append(JSON.stringify({ id: 1 }));
const producer = new IdempotentProducer(handle, "dist-check", { autoClaim: true });
const receipt = producer.append(JSON.stringify({ id: 2 }));
await producer.flush();
assert.ok((await receipt.wait()).offset, "the producer's receipt has no offset");
await producer.detach();
const res = await stream({ url, live: false });
const got = await res.json();
assert.deepEqual(got, [{ id: 1 }, { id: 2 }]);
console.log("node quick start (import): ok", JSON.stringify(got));
