#!/usr/bin/env node
// Test-server launcher for the durable-streams-client integration tests.
//
// Starts the reference Durable Streams server (npm package
// @durable-streams/server, pinned in package.json) on 127.0.0.1 and prints
// its base URL as the only line on stdout, e.g. "http://127.0.0.1:34567".
//
// Usage:
//   node tests/server/start.mjs [--port N] [--long-poll-ms N] [--data-dir DIR]
//                               [--ignore-stdin]
//
//   --port N          listen on port N (default 0 = any free port)
//   --long-poll-ms N  long-poll / SSE idle timeout in ms (server default 30000)
//   --data-dir DIR    file-backed storage in DIR (default: in memory)
//   --ignore-stdin    do not treat stdin EOF as the stop signal (for manual
//                     use from a shell with stdin redirected from /dev/null)
//   --webhooks        enable webhook subscriptions (server option webhooks: true)
//
// Lifetime: the server runs until stdin reaches EOF (the parent closed its
// end of the pipe or died), until the parent process goes away, or until
// SIGTERM/SIGINT/SIGHUP. It then stops the server and exits 0.
//
// stdout carries exactly one line (the URL). Everything else, including the
// server's own log output, goes to stderr.

// --- keep stdout clean -----------------------------------------------------
// The server logs info messages through console.info, which Node sends to
// stdout. Send every console method to stderr so that the URL line is the
// only thing a test harness ever reads from stdout.
{
  const toStderr = (...args) => console.error(...args)
  console.log = toStderr
  console.info = toStderr
  console.debug = toStderr
  console.warn = toStderr
}

const USAGE =
  "usage: start.mjs [--port N] [--long-poll-ms N] [--data-dir DIR] [--ignore-stdin] [--webhooks]"

function fail(message, code = 2) {
  process.stderr.write(`test-server: ${message}\n`)
  process.exit(code)
}

function parseNonNegativeInt(flag, raw) {
  if (raw === undefined || !/^\d+$/.test(raw)) {
    fail(`${flag} needs a non-negative integer, got ${JSON.stringify(raw)}\n${USAGE}`)
  }
  return Number(raw)
}

function parseArgs(argv) {
  const opts = { port: 0, longPollMs: undefined, dataDir: undefined, watchStdin: true, webhooks: false }
  for (let i = 0; i < argv.length; i++) {
    let flag = argv[i]
    let value
    const eq = flag.indexOf("=")
    if (flag.startsWith("--") && eq !== -1) {
      value = flag.slice(eq + 1)
      flag = flag.slice(0, eq)
    }
    const takeValue = () => (value !== undefined ? value : argv[++i])
    switch (flag) {
      case "--port": {
        const port = parseNonNegativeInt(flag, takeValue())
        if (port > 65535) fail(`--port out of range: ${port}`)
        opts.port = port
        break
      }
      case "--long-poll-ms":
        opts.longPollMs = parseNonNegativeInt(flag, takeValue())
        break
      case "--data-dir": {
        const dir = takeValue()
        if (!dir) fail(`--data-dir needs a directory\n${USAGE}`)
        opts.dataDir = dir
        break
      }
      case "--ignore-stdin":
        opts.watchStdin = false
        break
      case "--webhooks":
        opts.webhooks = true
        break
      case "-h":
      case "--help":
        process.stderr.write(`${USAGE}\n`)
        process.exit(0)
        break
      default:
        fail(`unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`)
    }
  }
  return opts
}

const opts = parseArgs(process.argv.slice(2))

// The server package is installed next to this file by ensure.sh (npm ci, a no-op when
// up to date), so that a fresh clone can start a server with this one command.
let DurableStreamTestServer
try {
  ;({ DurableStreamTestServer } = await import("@durable-streams/server"))
} catch {
  const { spawnSync } = await import("node:child_process")
  const ensure = new URL("./ensure.sh", import.meta.url).pathname
  const installed = spawnSync("bash", [ensure], { stdio: ["ignore", 2, 2] })
  if (installed.status !== 0) fail(`installing the server failed (bash ${ensure})`, 1)
  try {
    ;({ DurableStreamTestServer } = await import("@durable-streams/server"))
  } catch (err) {
    fail(`cannot load @durable-streams/server (${err && err.message})`, 1)
  }
}

if (opts.dataDir) {
  const { mkdirSync } = await import("node:fs")
  mkdirSync(opts.dataDir, { recursive: true })
}

const serverOptions = { host: "127.0.0.1", port: opts.port }
if (opts.longPollMs !== undefined) serverOptions.longPollTimeout = opts.longPollMs
if (opts.dataDir) serverOptions.dataDir = opts.dataDir
if (opts.webhooks) serverOptions.webhooks = true

const server = new DurableStreamTestServer(serverOptions)

// --- shutdown ---------------------------------------------------------------
const STOP_GRACE_MS = 500
const STOP_DEADLINE_MS = 5000
let stopping = false

// `escalate`: a repeated request of this kind (a second Ctrl-C or SIGTERM)
// means "stop waiting for a clean stop and exit now".
function shutdown(reason, { exitCode = 0, escalate = false } = {}) {
  if (stopping) {
    if (escalate) {
      process.stderr.write(`test-server: ${reason} while stopping; exiting now\n`)
      process.exit(exitCode)
    }
    return
  }
  stopping = true
  process.stderr.write(`test-server: stopping (${reason})\n`)
  const deadline = setTimeout(() => {
    process.stderr.write(
      `test-server: server did not stop within ${STOP_DEADLINE_MS} ms; exiting anyway\n`
    )
    process.exit(exitCode)
  }, STOP_DEADLINE_MS)
  deadline.unref()
  // server.stop() waits for in-flight requests (for example one held by an
  // injected delayMs fault). After a short grace period, cut the remaining
  // connections so the stop (and a file-backed store's close) can finish.
  const grace = setTimeout(() => {
    const httpServer = server.server // the underlying node:http Server
    if (httpServer && typeof httpServer.closeAllConnections === "function") {
      process.stderr.write("test-server: closing connections still in flight\n")
      httpServer.closeAllConnections()
    }
  }, STOP_GRACE_MS)
  grace.unref()
  server
    .stop()
    .catch((err) => {
      process.stderr.write(`test-server: error while stopping: ${err && err.stack}\n`)
    })
    .finally(() => process.exit(exitCode))
}

for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) {
  process.on(sig, () => shutdown(sig, { escalate: true }))
}
process.on("uncaughtException", (err) => {
  process.stderr.write(`test-server: uncaught exception: ${err && err.stack}\n`)
  shutdown("uncaught exception", { exitCode: 1 })
})
process.on("unhandledRejection", (err) => {
  process.stderr.write(`test-server: unhandled rejection: ${err && err.stack}\n`)
  shutdown("unhandled rejection", { exitCode: 1 })
})
// If whoever reads our stdout goes away, a later write would raise EPIPE.
process.stdout.on("error", () => shutdown("stdout closed"))

// --- start -----------------------------------------------------------------
try {
  await server.start()
} catch (err) {
  fail(`failed to start server: ${err && err.message}`, 1)
}
const url = server.url

await new Promise((resolve) => process.stdout.write(`${url}\n`, resolve))
process.stderr.write(
  `test-server: listening on ${url} (${opts.dataDir ? `data dir ${opts.dataDir}` : "in memory"}` +
    `${opts.longPollMs !== undefined ? `, long-poll ${opts.longPollMs} ms` : ""}, pid ${process.pid})\n`
)

// --- die with the parent ----------------------------------------------------
// Primary signal: the parent holds the write end of our stdin; when it exits
// (normally or not) the pipe closes and we read EOF.
if (opts.watchStdin) {
  process.stdin.on("data", () => {}) // input is ignored; just drain it
  process.stdin.on("end", () => shutdown("stdin closed"))
  process.stdin.on("close", () => shutdown("stdin closed"))
  process.stdin.on("error", () => shutdown("stdin error"))
  process.stdin.resume()
}

// Backup signal: we were re-parented (the parent died but something else
// still holds our stdin open, e.g. a grandchild that inherited the pipe).
const initialPpid = process.ppid
if (initialPpid > 1) {
  setInterval(() => {
    if (process.ppid !== initialPpid) shutdown("parent process exited")
  }, 1000).unref()
}
