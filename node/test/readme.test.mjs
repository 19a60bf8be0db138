// Runs every ```js block of node/README.md against the test server.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { test } from "node:test";
import { useServer } from "./server.mjs";

const server = useServer();
const readme = await readFile(new URL("../README.md", import.meta.url), "utf8");
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test("the README has examples", () => assert.ok(blocks.length > 0));

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs`, async () => {
    // Inside the package directory, so the package imports itself by name.
    const file = new URL(`./.readme-${randomUUID()}.mjs`, import.meta.url);
    const base = `${server.url}/v1/stream/readme-${randomUUID()}`;
    // The subscription example needs the server's stream root itself.
    const text = code.includes("new Subscriptions(")
      ? code.replaceAll("http://127.0.0.1:4437", server.url)
      : code.replaceAll("http://127.0.0.1:4437/v1/stream", base);
    await writeFile(file, text);
    try {
      await promisify(execFile)(process.execPath, [file.pathname], { timeout: 30_000 });
    } finally {
      await rm(file);
    }
  });
});
