// Starts the reference server (tests/server/start.mjs) for a test file and stops it after.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";

const launcher = fileURLToPath(new URL("../../tests/server/start.mjs", import.meta.url));

/** Starts a server before the file's tests; `server.url` is its base URL. */
export function useServer(args = ["--long-poll-ms", "500"]) {
  const server = { url: "", streamUrl: (p = "s") => `${server.url}/v1/stream/${p}-${randomUUID()}` };
  let child;
  before(async () => {
    child = spawn(process.execPath, [launcher, ...args], { stdio: ["pipe", "pipe", "inherit"] });
    server.url = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) resolve(out.trim());
      });
      child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
  });
  after(() => {
    child.stdin.end();
  });
  return server;
}

/** Arms a fault on the server (see notes: POST /_test/inject-error). */
export async function injectError(baseUrl, fault) {
  const res = await fetch(`${baseUrl}/_test/inject-error`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(fault),
  });
  if (!res.ok) throw new Error(`inject-error: ${res.status}`);
}
