#!/usr/bin/env python3
"""Benchmark driver for durable-streams-client (issue 9). Run it through bench/run.sh.

For every scenario, server and repetition it starts a fresh server pinned to CPU 1, runs every
contender that implements the scenario (interleaved, order rotated each repetition) pinned to
CPU 0, takes the contender's CPU time and peak RSS from wait4(), the server's CPU from /proc,
verifies the stream independently, and writes runs.jsonl and summary.md under the output
directory (and the results section of BENCHMARKS.md in a full run).

Contenders are described by bench/contenders/<id>.json; the protocol is in bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
JSON_CT = "application/json"
BYTES_CT = "application/octet-stream"
MIB = 1 << 20
CLIENT_CPU, SERVER_CPU = "0", "1"

# count = full run, smoke = smoke run. Overload: the proxy lets `bytes_per_sec` through and
# the producer is offered twice that (in messages per second) for `seconds`.
SCENARIOS: dict[str, dict[str, Any]] = {
    # "warmup": the 100-byte messages written through a fresh server before its contenders run
    # (WARMUP_DEFAULT without it). The Rust server takes its first ~100 MB at about half the rate
    # of the next (BENCHMARKS.md, round 20), so the write scenarios warm it with that much.
    "producer-json": {"count": 1_000_000, "smoke": 2_000, "msg_bytes": 100, "warmup": 1_000_000},
    "producer-bytes": {
        "count": 2_000,
        "smoke": 16,
        "msg_bytes": 65_536,
        "ct": BYTES_CT,
        "warmup": 1_000_000,
    },
    "append-c1": {"count": 2_000, "smoke": 50, "concurrency": 1},
    "append-c8": {"count": 4_000, "smoke": 80, "concurrency": 8},
    "catchup-read": {"count": 1_000_000, "smoke": 2_000},
    "live-sse": {"count": 500, "smoke": 20, "rate": 200.0},
    "live-longpoll": {"count": 500, "smoke": 20, "rate": 200.0},
    "overload": {
        "bytes_per_sec": 4e6,
        # Long enough for the default 32 MiB buffer to fill (2x overload: +4 MB/s, ~8.4 s) and
        # stay full: 6 s never filled it, so it measured the garbage, not the bound.
        "seconds": 16.0,
        "smoke_bytes_per_sec": 4e6,
        "smoke_seconds": 0.25,
    },
}
WARMUP_DEFAULT = 2_000
GROUPS = {
    "append-latency": ["append-c1", "append-c8"],
    "live-tail": ["live-sse", "live-longpoll"],
}
SERVERS = ["rust", "node"]
# Peak RSS growth (MiB) under overload that still counts as bounded: twice the producer's
# default max_buffered_bytes (32 MiB).
BOUNDED_GROWTH_MIB = 64


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- contenders


def load_contenders() -> list[dict[str, Any]]:
    out = []
    for p in sorted((BENCH / "contenders").glob("*.json")):
        c = json.loads(p.read_text())
        c.setdefault("slots", {})
        out.append(c)
    order = ["raw", "core", "py-binding", "node-binding", "kotlin-binding", "ts", "py", "control"]
    out.sort(key=lambda c: (order.index(c["role"]) if c["role"] in order else 99, c["id"]))
    return out


def expand(cmd: list[str], tools: dict[str, str]) -> list[str]:
    return [part.format(**tools) for part in cmd]


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pin(cpu: str, cmd: list[str], pinning: bool) -> list[str]:
    return ["taskset", "-c", cpu, *cmd] if pinning else cmd


def proc_cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine so far (all cores)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, proc: subprocess.Popen[Any], deadline_s: float = 15.0) -> None:
    end = time.time() + deadline_s
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not listen on {port} within {deadline_s} s")


class Server:
    """One server process (plus, for overload, a byte-rate-capped proxy in front of it)."""

    def __init__(self, kind: str, tools: dict[str, str], logdir: Path, pinning: bool):
        self.kind = kind
        self.procs: list[subprocess.Popen[Any]] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="dsc-bench-")
        self.log = open(logdir / f"server-{kind}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.tools, self.pinning = tools, pinning
        self.url = ""

    def start(self) -> None:
        kind, tools, pinning, logf = self.kind, self.tools, self.pinning, self.log
        if kind == "rust":
            port = free_port()
            cmd = [
                tools["rust_server"],
                "--durability",
                "memory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                self.tmp.name,
            ]
            p = subprocess.Popen(
                pin(SERVER_CPU, cmd, pinning), stdout=logf, stderr=logf, stdin=subprocess.DEVNULL
            )
            self.procs.append(p)
            wait_port(port, p)
            self.url = f"http://127.0.0.1:{port}"
        else:
            cmd = [tools["node"], str(ROOT / "tests/server/start.mjs")]
            p = subprocess.Popen(
                pin(SERVER_CPU, cmd, pinning),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=logf,
            )
            self.procs.append(p)
            assert p.stdout is not None
            line = p.stdout.readline().decode().strip()
            if not line.startswith("http"):
                raise RuntimeError(f"node server did not print its URL (got {line!r})")
            self.url = line

    def add_proxy(self, tools: dict[str, str], bytes_per_sec: float, pinning: bool) -> str:
        host = self.url.removeprefix("http://")
        cmd = [tools["dsc_bench"], "proxy", host, str(int(bytes_per_sec))]
        p = subprocess.Popen(
            pin(SERVER_CPU, cmd, pinning), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        self.procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline().decode().strip()
        if not line.startswith("http"):
            raise RuntimeError("proxy did not print its URL")
        return line

    def cpu_seconds(self) -> float:
        return sum(proc_cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                if p.stdin:
                    p.stdin.close()
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.tmp.cleanup()
        self.log.close()


def http(method: str, url: str, body: bytes | None = None, ct: str | None = None) -> int:
    import urllib.request

    req = urllib.request.Request(url, data=body, method=method)
    if ct:
        req.add_header("Content-Type", ct)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def run_tool(cmd: list[str], timeout: float) -> dict[str, Any]:
    res = subprocess.run(cmd, check=False, capture_output=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {res.stderr.decode()[-2000:]}")
    return json.loads(res.stdout.decode().strip().splitlines()[-1])


def run_contender(cmd: list[str], timeout: float, errlog: Path) -> dict[str, Any]:
    """Runs one contender; returns its outcome plus rusage figures. Never raises."""
    t0 = time.perf_counter()
    with open(errlog, "ab") as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        assert p.stdout is not None
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        timer.cancel()
    wall = time.perf_counter() - t0
    res: dict[str, Any] = {
        "exit_code": p.returncode,
        "wall_s": wall,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_kib": ru.ru_maxrss,
    }
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    if timed_out.is_set():
        res["error"] = f"killed after {timeout:.0f} s"
    elif p.returncode != 0:
        res["error"] = f"exit code {p.returncode} (see {errlog.name})"
    elif not lines:
        res["error"] = "printed no outcome line"
    else:
        try:
            res["outcome"] = json.loads(lines[-1])
        except json.JSONDecodeError as e:
            res["error"] = f"bad outcome line: {e}"
    return res


# ----------------------------------------------------------------------------- scenarios


def scenario_params(name: str, smoke: bool, scale: float = 1.0) -> dict[str, Any]:
    s = SCENARIOS[name]
    p: dict[str, Any] = {
        "msg_bytes": s.get("msg_bytes", 100),
        "content_type": s.get("ct", JSON_CT),
        "concurrency": s.get("concurrency", 1),
        "batch_bytes": MIB,
        "linger_ms": 5,
        "max_in_flight": 5,
        "rate": s.get("rate", 0.0),
    }
    if name == "overload":
        bps = s["smoke_bytes_per_sec"] if smoke else s["bytes_per_sec"]
        secs = s["smoke_seconds"] if smoke else s["seconds"] * scale
        p["rate"] = 2 * bps / p["msg_bytes"]
        p["count"] = int(p["rate"] * secs)
        p["bytes_per_sec"] = bps
    else:
        p["count"] = s["smoke"] if smoke else max(1, int(s["count"] * scale))
    # Generous: a slow contender under contention must still finish; a hung one must not hang us.
    p["timeout_s"] = 30.0 if smoke else 300.0
    return p


def warmup_count(name: str, smoke: bool, scale: float = 1.0) -> int:
    """How many 100-byte messages warm a fresh server up before the scenario's contenders."""
    n = SCENARIOS[name].get("warmup", WARMUP_DEFAULT)
    if smoke:
        return min(n, WARMUP_DEFAULT)
    return max(WARMUP_DEFAULT, int(n * scale))


def verify_run(
    name: str,
    params: dict[str, Any],
    res: dict[str, Any],
    url: str,
    tools: dict[str, str],
    seeded: dict[str, Any] | None,
    role: str,
) -> str | None:
    """Returns None when the run checks out, else what is wrong."""
    o = res["outcome"]
    n = params["count"]
    if o.get("messages") != n:
        return f"reported {o.get('messages')} messages, expected {n}"
    if not o.get("seconds") or o["seconds"] <= 0:
        return "reported no elapsed time"
    if name.startswith("append-") and len(o.get("latencies_us", [])) != n:
        return f"reported {len(o.get('latencies_us', []))} latencies, expected {n}"
    if name.startswith("live-"):
        if len(o.get("latencies_us", [])) != n:
            return f"received {len(o.get('latencies_us', []))} messages, expected {n}"
        if o.get("checksum") != n * (n - 1) // 2:
            return "live checksum does not match the messages sent"
    if name == "catchup-read":
        assert seeded is not None
        if role == "raw":
            if o.get("bytes") != seeded["body_bytes"]:
                return f"read {o.get('bytes')} bytes, the stream holds {seeded['body_bytes']}"
        elif o.get("checksum") != seeded["checksum"]:
            return f"checksum {o.get('checksum')} != {seeded['checksum']}"
        return None
    if role == "control":
        # A control runs a contender's loop with no client and writes nothing.
        return None
    kind = "json" if params["content_type"] == JSON_CT else "bytes"
    rep = run_tool([tools["dsc_bench"], "verify", url, kind, str(n), str(params["msg_bytes"])], 300)
    res["verify"] = rep
    if not rep["ok"] or rep["count"] != n:
        return (
            f"stream holds {rep['count']} messages (missing {rep['missing']}, "
            f"duplicates {rep['duplicates']}, out of range {rep['out_of_range']})"
        )
    return None


def run_all(args: argparse.Namespace, tools: dict[str, str], outdir: Path) -> list[dict[str, Any]]:
    contenders = [c for c in load_contenders() if not args.contender or c["id"] in args.contender]
    pinning = args.pin
    rows: list[dict[str, Any]] = []
    stamp = outdir.name
    for name in args.scenarios:
        params = scenario_params(name, args.smoke, args.scale)
        active = [c for c in contenders if name in c["scenarios"]]
        if not active:
            log(f"{name}: no contender implements it; skipped")
            continue
        for server_kind in args.servers:
            for rep in range(args.reps):
                server = Server(server_kind, tools, outdir, pinning)
                try:
                    server.start()
                    base = server.url
                    if name == "overload":
                        base = server.add_proxy(tools, params["bytes_per_sec"], pinning)
                    seeded = None
                    # Warm-up through the server's write and read paths (see warmup_count).
                    warm = f"{server.url}/bench/warmup"
                    http("PUT", warm, ct=JSON_CT)
                    count = warmup_count(name, args.smoke, args.scale)
                    run_tool([tools["dsc_bench"], "seed", warm, str(count), "100"], 600)
                    if name == "catchup-read":
                        seed_url = f"{server.url}/bench/{stamp}/catchup"
                        http("PUT", seed_url, ct=JSON_CT)
                        run_tool(
                            [tools["dsc_bench"], "seed", seed_url, str(params["count"]), "100"],
                            600,
                        )
                        seeded = run_tool(
                            [
                                tools["dsc_bench"],
                                "verify",
                                seed_url,
                                "json",
                                str(params["count"]),
                                "100",
                            ],
                            600,
                        )
                        if not seeded["ok"]:
                            raise RuntimeError(f"seeding failed: {seeded}")
                    k = rep % len(active)
                    for c in active[k:] + active[:k]:
                        if name == "catchup-read":
                            url = f"{base}/bench/{stamp}/catchup"
                        else:
                            url = f"{base}/bench/{stamp}/{name}/{server_kind}/r{rep}/{c['id']}"
                            http("PUT", url.replace(base, server.url), ct=params["content_type"])
                        job = {
                            "scenario": name,
                            "server": server_kind,
                            "stream_url": url,
                            "producer_id": f"bench-{c['id']}-{rep}",
                            **{k2: v for k2, v in params.items() if k2 != "bytes_per_sec"},
                        }
                        cmd = pin(
                            CLIENT_CPU,
                            expand(c["command"], tools) + [json.dumps(job)],
                            pinning,
                        )
                        s0, m0, t0 = server.cpu_seconds(), machine_busy_seconds(), time.time()
                        res = run_contender(
                            cmd, params["timeout_s"] + 30, outdir / "contenders.log"
                        )
                        s1, m1, t1 = server.cpu_seconds(), machine_busy_seconds(), time.time()
                        row: dict[str, Any] = {
                            "scenario": name,
                            "server": server_kind,
                            "rep": rep,
                            "contender": c["id"],
                            "role": c["role"],
                            "params": {k2: v for k2, v in params.items() if k2 != "timeout_s"},
                            **res,
                            "server_cpu_s": s1 - s0,
                            # Busy CPU of the machine not spent by this contender or the server,
                            # in cores: other engineers' builds and the like.
                            "foreign_cores": min(
                                float(os.cpu_count() or 1),
                                max(0.0, (m1 - m0) - res["cpu_s"] - (s1 - s0)) / max(1e-6, t1 - t0),
                            ),
                        }
                        if "outcome" in res:
                            try:
                                problem = verify_run(
                                    name,
                                    params,
                                    row,
                                    url.replace(base, server.url),
                                    tools,
                                    seeded,
                                    c["role"],
                                )
                            except Exception as e:  # noqa: BLE001 - a failed check is a result
                                problem = f"verification failed: {e}"
                            if problem:
                                row["error"] = f"verification: {problem}"
                        row["ok"] = "error" not in row
                        brief = describe(row)
                        log(f"{name} {server_kind} rep {rep + 1}/{args.reps} {c['id']}: {brief}")
                        rows.append(row)
                        with open(outdir / "runs.jsonl", "a") as f:
                            f.write(json.dumps(row) + "\n")
                except Exception as e:  # noqa: BLE001 - a broken setup fails this repetition only
                    log(f"{name} {server_kind} rep {rep + 1}: setup FAILED: {e}")
                    row = {
                        "scenario": name,
                        "server": server_kind,
                        "rep": rep,
                        "contender": "(setup)",
                        "role": "",
                        "ok": False,
                        "error": f"setup: {e}",
                    }
                    rows.append(row)
                    with open(outdir / "runs.jsonl", "a") as f:
                        f.write(json.dumps(row) + "\n")
                finally:
                    server.stop()
    return rows


# ----------------------------------------------------------------------------- statistics


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def metrics(row: dict[str, Any]) -> dict[str, float]:
    """The per-run numbers the summary aggregates."""
    o = row["outcome"]
    n = o["messages"]
    m = {
        "msgs_per_s": n / o["seconds"],
        "mb_per_s": o["bytes"] / o["seconds"] / 1e6,
        "cpu_us_per_msg": row["cpu_s"] / n * 1e6,
        "peak_rss_mib": row["peak_rss_kib"] / 1024,
        "server_cpu_us_per_msg": row["server_cpu_s"] / n * 1e6,
        "foreign_cores": row["foreign_cores"],
    }
    lat = o.get("latencies_us")
    if lat:
        m["p50_ms"] = pct(lat, 0.50) / 1000
        m["p99_ms"] = pct(lat, 0.99) / 1000
    rss = o.get("rss_samples")
    if rss:
        m["rss_growth_mib"] = (max(s[1] for s in rss) - rss[0][1]) / 1024
    extra = o.get("extra", {})
    if "offered_rate" in extra:
        m["offered_rate"] = extra["offered_rate"]
    return m


def describe(row: dict[str, Any]) -> str:
    if not row["ok"]:
        return f"FAILED: {row['error']}"
    m = metrics(row)
    parts = [f"{m['msgs_per_s']:,.0f} msg/s", f"{m['mb_per_s']:.1f} MB/s"]
    if "p50_ms" in m:
        parts.append(f"p50 {m['p50_ms']:.2f} ms p99 {m['p99_ms']:.2f} ms")
    parts.append(f"cpu {m['cpu_us_per_msg']:.2f} us/msg, rss {m['peak_rss_mib']:.0f} MiB")
    if "rss_growth_mib" in m:
        parts.append(f"rss growth {m['rss_growth_mib']:.0f} MiB")
    parts.append(f"foreign {m['foreign_cores']:.2f} cores")
    return ", ".join(parts)


def agg(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt(values: list[float], digits: int = 0, unit: str = "") -> str:
    if not values:
        return "—"
    med, lo, hi = agg(values)
    f = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return f.format(med) + unit
    return f"{f.format(med)}{unit} ({f.format(lo)}–{f.format(hi)})"


# ----------------------------------------------------------------------------- reporting


def matrix_md(contenders: list[dict[str, Any]]) -> str:
    names = list(SCENARIOS)
    out = ["| contender | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for c in contenders:
        cells = []
        for n in names:
            cells.append("yes" if n in c["scenarios"] else "slot" if n in c["slots"] else "n/a")
        out.append(f"| {c['id']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def summary_md(rows: list[dict[str, Any]], contenders: list[dict[str, Any]]) -> str:
    by: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    fails: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r["scenario"], r["server"], r["contender"])
        if r["ok"]:
            by.setdefault(key, []).append(metrics(r))
        else:
            fails[key] = fails.get(key, 0) + 1
    labels = {c["id"]: c for c in contenders}
    out: list[str] = []
    scen = [s for s in SCENARIOS if any(k[0] == s for k in list(by) + list(fails))]
    servers = [s for s in SERVERS if any(k[1] == s for k in list(by) + list(fails))]
    for s in scen:
        for srv in servers:
            keys = [k for k in labels if (s, srv, k) in by or (s, srv, k) in fails]
            if not keys:
                continue
            out.append(f"\n#### {s} — {srv} server\n")
            if s == "overload":
                out.append(
                    "| contender | offered msg/s reached | msg/s, offer + flush | peak RSS MiB | "
                    f"RSS growth MiB | bounded (growth ≤ {BOUNDED_GROWTH_MIB} MiB) | "
                    "growth beyond its runtime's control MiB | client CPU µs/msg | runs |"
                )
                out.append("|---|---|---|---|---|---|---|---|---|")
            else:
                out.append(
                    "| contender | msg/s | MB/s | p50 ms | p99 ms | client CPU µs/msg | "
                    "peak RSS MiB | server CPU µs/msg | foreign cores | runs |"
                )
                out.append("|---|---|---|---|---|---|---|---|---|---|")
            for k in keys:
                ms = by.get((s, srv, k), [])

                def col(f: str, ms: list[dict[str, float]] = ms) -> list[float]:
                    return [m[f] for m in ms if f in m]

                runs = f"{len(ms)} ok" + (
                    f", {fails[(s, srv, k)]} failed" if (s, srv, k) in fails else ""
                )
                if s == "overload":
                    growth = col("rss_growth_mib")
                    bounded = (
                        "—"
                        if not growth
                        else ("yes" if max(growth) <= BOUNDED_GROWTH_MIB else "no")
                    )
                    # The same loop with no client (a manifest's "control"), median growth
                    # subtracted: what the client itself adds on top of its language runtime.
                    ctl = [
                        m["rss_growth_mib"]
                        for m in by.get((s, srv, labels[k].get("control", "")), [])
                        if "rss_growth_mib" in m
                    ]
                    beyond = (
                        fmt([g - statistics.median(ctl) for g in growth]) if ctl and growth else "—"
                    )
                    out.append(
                        f"| {k} | {fmt(col('offered_rate'))} | {fmt(col('msgs_per_s'))} | "
                        f"{fmt(col('peak_rss_mib'))} | {fmt(growth)} | {bounded} | {beyond} | "
                        f"{fmt(col('cpu_us_per_msg'), 2)} | {runs} |"
                    )
                else:
                    # Live tail is paced: its msg/s is the offered rate, not a result.
                    paced = s.startswith("live-")
                    out.append(
                        f"| {k} | {'paced' if paced else fmt(col('msgs_per_s'))} | "
                        f"{'—' if paced else fmt(col('mb_per_s'), 1)} | "
                        f"{fmt(col('p50_ms'), 2)} | {fmt(col('p99_ms'), 2)} | "
                        f"{fmt(col('cpu_us_per_msg'), 2)} | {fmt(col('peak_rss_mib'))} | "
                        f"{fmt(col('server_cpu_us_per_msg'), 2)} | "
                        f"{fmt(col('foreign_cores'), 2)} | {runs} |"
                    )
    return "\n".join(out)


RATIOS = [
    ("ours ÷ raw", "rust-core", "raw"),
    ("Python binding ÷ Rust core", "py-binding", "rust-core"),
    ("Node binding ÷ Rust core", "node-binding", "rust-core"),
    ("Python binding ÷ CPython's json.loads alone", "py-binding", "py-parse"),
    ("Node binding ÷ V8's JSON.parse alone", "node-binding", "node-parse"),
    ("Python binding ÷ plain Python reader (urllib, json.loads)", "py-binding", "py-plain"),
    ("Node binding ÷ plain Node reader (node:http, JSON.parse)", "node-binding", "node-plain"),
    ("reference: plain Python reader ÷ json.loads alone", "py-plain", "py-parse"),
    ("reference: plain Node reader ÷ JSON.parse alone", "node-plain", "node-parse"),
    ("ours (Rust core) ÷ TypeScript client", "rust-core", "ts-client"),
    ("ours (Node binding) ÷ TypeScript client", "node-binding", "ts-client"),
    ("ours (Rust core) ÷ Python client", "rust-core", "pypi-client"),
    ("ours (Python binding) ÷ Python client", "py-binding", "pypi-client"),
    ("reference: TypeScript client ÷ raw", "ts-client", "raw"),
    ("reference: Python client ÷ raw", "pypi-client", "raw"),
]


def ratios_md(rows: list[dict[str, Any]], contenders: list[dict[str, Any]]) -> str:
    """Median msg/s of A ÷ median msg/s of B, same run; for live tail p50 latency B ÷ A
    (so > 1 always means A is better)."""
    known = {c["id"]: c for c in contenders}
    med: dict[tuple[str, str, str], dict[str, float]] = {}
    groups: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for r in rows:
        if r["ok"]:
            groups.setdefault((r["scenario"], r["server"], r["contender"]), []).append(metrics(r))
    for k, ms in groups.items():
        med[k] = {f: statistics.median([m[f] for m in ms if f in m]) for f in ms[0]}
    servers = [s for s in SERVERS if any(k[1] == s for k in med)]
    scen = [s for s in SCENARIOS if s != "overload"]
    out = [
        "| ratio | server | " + " | ".join(scen) + " |",
        "|---|---|" + "---|" * len(scen),
    ]
    for label, a, b in RATIOS:
        for srv in servers:
            cells = []
            for s in scen:
                ma, mb = med.get((s, srv, a)), med.get((s, srv, b))
                if ma and mb:
                    if s.startswith("live-"):
                        cells.append(f"{mb['p50_ms'] / ma['p50_ms']:.2f}")
                    else:
                        cells.append(f"{ma['msgs_per_s'] / mb['msgs_per_s']:.2f}")
                else:
                    ca, cb = known.get(a), known.get(b)
                    slot = any(c is not None and s in c["slots"] for c in (ca, cb))
                    na = any(
                        c is not None and s not in c["scenarios"] and s not in c["slots"]
                        for c in (ca, cb)
                    )
                    cells.append("n/a" if na else "slot" if slot else "—")
            out.append(f"| {label} | {srv} | " + " | ".join(cells) + " |")
    return "\n".join(out)


# Issue 19's targets on the Rust server: (target, scenario, A, B, threshold), met when
# msg/s of A ÷ msg/s of B reaches the threshold.
TARGETS = [
    ("Rust producer ≥ 0.9 of raw", "producer-json", "rust-core", "raw", 0.9),
    ("Python, one `append` per message, ≥ 0.5 of raw", "producer-json", "py-binding", "raw", 0.5),
    ("Node, one `append` per message, ≥ 0.5 of raw", "producer-json", "node-binding", "raw", 0.5),
    ("Python `append_many` ≥ 0.85 of raw", "producer-json", "py-binding-many", "raw", 0.85),
    ("Node `appendMany` ≥ 0.85 of raw", "producer-json", "node-binding-many", "raw", 0.85),
    ("catch-up: Python ≥ 0.8 of the Rust core", "catchup-read", "py-binding", "rust-core", 0.8),
    ("catch-up: Node ≥ 0.8 of the Rust core", "catchup-read", "node-binding", "rust-core", 0.8),
    (
        "catch-up, one member built (`field=`): Python ≥ 0.8 of the Rust core",
        "catchup-read",
        "py-binding-field",
        "rust-core",
        0.8,
    ),
    (
        "catch-up, one member built (`field`): Node ≥ 0.8 of the Rust core",
        "catchup-read",
        "node-binding-field",
        "rust-core",
        0.8,
    ),
    (
        "catch-up (restated): Python ≥ 0.8 of `json.loads` alone",
        "catchup-read",
        "py-binding",
        "py-parse",
        0.8,
    ),
    (
        "catch-up (restated): Node ≥ 0.8 of `JSON.parse` alone",
        "catchup-read",
        "node-binding",
        "node-parse",
        0.8,
    ),
]


def paired_ratios(
    rows: list[dict[str, Any]], scenario: str, server: str, a: str, b: str
) -> tuple[float | None, list[float]]:
    """msg/s of A ÷ msg/s of B two ways: the ratio of the medians over the run, and one ratio
    per repetition in which both ran (same server process, minutes apart at most), which a
    machine whose speed drifts during the run disturbs less."""
    rate: dict[str, dict[int, float]] = {a: {}, b: {}}
    for r in rows:
        if (
            r["ok"]
            and r["scenario"] == scenario
            and r["server"] == server
            and r["contender"] in rate
        ):
            rate[r["contender"]][r["rep"]] = metrics(r)["msgs_per_s"]
    if not rate[a] or not rate[b]:
        return None, []
    of_medians = statistics.median(rate[a].values()) / statistics.median(rate[b].values())
    per_rep = [rate[a][k] / rate[b][k] for k in sorted(rate[a]) if k in rate[b]]
    return of_medians, per_rep


def targets_md(rows: list[dict[str, Any]]) -> str:
    """Issue 19's targets on the Rust server, judged by both ratio forms."""
    out = [
        "| target (Rust server) | ratio of medians | rep by rep: median (min–max) | verdict |",
        "|---|---|---|---|",
    ]
    for label, scenario, a, b, threshold in TARGETS:
        of_medians, per_rep = paired_ratios(rows, scenario, "rust", a, b)
        if of_medians is None:
            out.append(f"| {label} | — | — | not measured |")
            continue
        by_rep = statistics.median(per_rep) if per_rep else None
        cells = [f"{of_medians:.2f}"]
        if by_rep is None:
            cells.append("—")
        else:
            reps = f"{len(per_rep)} rep" + ("s" if len(per_rep) != 1 else "")
            cells.append(f"{by_rep:.2f} ({min(per_rep):.2f}–{max(per_rep):.2f}, {reps})")
        # Judged as shown (two decimals), so that a cell reading 0.85 meets 0.85.
        met = [round(x, 2) >= threshold for x in (of_medians, by_rep) if x is not None]
        verdict = "met" if all(met) else "not met" if not any(met) else "met by one form only"
        out.append(f"| {label} | " + " | ".join(cells) + f" | {verdict} |")
    requests = resent = 0
    for r in rows:
        if (
            r["ok"]
            and r["scenario"] == "producer-json"
            and r["server"] == "rust"
            and r["contender"] == "rust-core"
        ):
            extra = r["outcome"].get("extra", {})
            requests += int(extra.get("requests", 0))
            resent += int(extra.get("retries", 0))
    if requests:
        share = resent / requests
        verdict = "met" if share < 0.02 else "not met"
        out.append(
            f"| Rust producer: batches resent < 2 % | {resent} of {requests} requests "
            f"({share:.1%}) | — | {verdict} |"
        )
    return "\n".join(out)


def history_md(results: Path, since: str = "") -> str:
    """Issue 19's targets in every kept run that measured them: one row per results directory
    (named `since` or later) with producer-json or catchup-read on the Rust server in at least 3
    repetitions. A cell is the ratio of medians / the median of the per-repetition ratios; ✓
    when both reach the target (judged at two decimals, as `targets_md` does)."""
    short = [
        "Rust ≥ 0.9",
        "Py append ≥ 0.5",
        "Node append ≥ 0.5",
        "Py many ≥ 0.85",
        "Node many ≥ 0.85",
        "catch-up Py ≥ 0.8",
        "catch-up Node ≥ 0.8",
        "picked Py ≥ 0.8",
        "picked Node ≥ 0.8",
        "Py ÷ json.loads ≥ 0.8",
        "Node ÷ JSON.parse ≥ 0.8",
    ]
    head = ["run", "commit", "raw msg/s", "max foreign cores", *short]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    met = [0] * len(TARGETS)
    judged = [0] * len(TARGETS)
    dirs = [p for p in results.iterdir() if (p / "runs.jsonl").exists() and p.name >= since]
    for d in sorted(dirs):
        rows = [json.loads(line) for line in (d / "runs.jsonl").read_text().splitlines() if line]
        reps = {
            r["rep"]
            for r in rows
            if r["ok"] and r["server"] == "rust" and r["scenario"] in TARGET_SCENARIOS
        }
        if len(reps) < 3:
            continue
        meta = d / "meta.json"
        commit = json.loads(meta.read_text()).get("commit") if meta.exists() else None
        if commit:
            # "abc1234 with uncommitted changes (...)": the commit, marked.
            commit = commit.split()[0] + ("+" if " " in commit else "")
        raw = [
            metrics(r)["msgs_per_s"]
            for r in rows
            if r["ok"]
            and r["server"] == "rust"
            and r["scenario"] == "producer-json"
            and r["contender"] == "raw"
        ]
        foreign = [r["foreign_cores"] for r in rows if r["ok"] and r["server"] == "rust"]
        cells = [
            d.name,
            commit or "—",
            f"{statistics.median(raw) / 1e6:.2f}M" if raw else "—",
            f"{max(foreign):.2f}" if foreign else "—",
        ]
        for k, (_, scenario, a, b, threshold) in enumerate(TARGETS):
            of_medians, per_rep = paired_ratios(rows, scenario, "rust", a, b)
            if of_medians is None or not per_rep:
                cells.append("")
                continue
            by_rep = statistics.median(per_rep)
            ok = round(of_medians, 2) >= threshold and round(by_rep, 2) >= threshold
            judged[k] += 1
            met[k] += ok
            cells.append(f"{of_medians:.2f} / {by_rep:.2f}" + (" ✓" if ok else ""))
        out.append("| " + " | ".join(cells) + " |")
    tally = [f"{m} of {j}" for m, j in zip(met, judged)]
    out.append("| runs meeting the target by both forms | | | | " + " | ".join(tally) + " |")
    return "\n".join(out)


TARGET_SCENARIOS = {scenario for _, scenario, _, _, _ in TARGETS}


def cmd_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def head_commit() -> str:
    """The checkout's commit, short."""
    return cmd_version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])


def source_commit() -> str:
    """The commit the contenders are built from, and whether the checkout differs from it."""
    commit = head_commit()
    if not commit or commit == "?":
        return "unknown (not a git checkout)"
    changed = cmd_version(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return f"{commit} with uncommitted changes" if changed else commit


def machine_md(tools: dict[str, str], args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    node_pkg = json.loads((BENCH / "node/package.json").read_text())["dependencies"]
    srv_pkg = json.loads((ROOT / "tests/server/package.json").read_text())["dependencies"]
    foreign = [r["foreign_cores"] for r in rows if "foreign_cores" in r]
    # The commit and time the runs were made at (meta.json), not those of a later regeneration
    # of the report from their runs.jsonl; reports of runs made before meta.json recorded them
    # say so.
    commit = args.commit or f"not recorded (report regenerated at {head_commit()})"
    date = args.date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pinning = "server (and proxy) on CPU 1, client on CPU 0 (taskset)" if args.pin else "none"
    fmed = statistics.median(foreign) if foreign else 0.0
    fmax = max(foreign) if foreign else 0.0
    lines = [
        f"- date: {date}, commit {commit}",
        (
            f"- machine: {os.cpu_count()} CPUs ({cpu}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
            f"{platform.system()} {platform.release()}"
        ),
        f"- pinning: {pinning}",
        f"- command: `{args.command_line}`",
        (
            f"- repetitions: {args.reps}, counts × {args.scale:g}; contenders interleaved "
            "(order rotated per repetition); fresh server per scenario and repetition, "
            + (
                f"warmed up first ({args.warmup:,} messages before the producer scenarios)"
                if args.warmup
                else "warm-up not recorded"
            )
        ),
        (
            "- servers: Rust `durable-streams` 0.1.5 (`--durability memory`), Node "
            f"`@durable-streams/server` {srv_pkg['@durable-streams/server']}"
        ),
        (
            "- clients: ours `durable-streams-client` (this commit), TypeScript "
            f"`@durable-streams/client` {node_pkg['@durable-streams/client']}, "
            "Python `durable-streams` 0.1.0"
        ),
        (
            f"- toolchains: {cmd_version(['rustc', '--version'])}; "
            f"Node {cmd_version([tools['node'], '--version'])}; "
            f"{cmd_version([tools['python'], '--version'])}"
        ),
        (
            "- other load on the machine while contenders ran (foreign cores, of 2): "
            f"median {fmed:.2f}, max {fmax:.2f}"
        ),
    ]
    return "\n".join(lines)


def write_reports(
    rows: list[dict[str, Any]], tools: dict[str, str], args: argparse.Namespace, outdir: Path
) -> None:
    contenders = load_contenders()
    body = "\n\n".join(
        [
            machine_md(tools, args, rows),
            "### Headline ratios (this run; > 1 means the first is better)\n\n"
            + ratios_md(rows, contenders),
            "### Issue 19's targets in this run (both ratio forms)\n\n" + targets_md(rows),
            "### Results (median, min–max in brackets)\n" + summary_md(rows, contenders),
        ]
    )
    (outdir / "summary.md").write_text(body + "\n")
    log(f"wrote {outdir / 'summary.md'}")
    if args.write_benchmarks:
        path = ROOT / "BENCHMARKS.md"
        text = path.read_text()
        begin, end = "<!-- results:begin -->", "<!-- results:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            _, tail = rest.split(end, 1)
            note = f"\n{args.note}\n" if args.note else ""
            rel = outdir.relative_to(ROOT) if outdir.is_relative_to(ROOT) else outdir
            text = f"{head}{begin}\n{note}\nRaw runs: `{rel}/runs.jsonl`.\n\n{body}\n{end}{tail}"
            path.write_text(text)
            log(f"updated the results section of {path}")


# ----------------------------------------------------------------------------- main


def main() -> int:
    # SIGTERM as Ctrl-C, so that the servers started so far are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny counts, one repetition")
    ap.add_argument(
        "--scenario",
        action="append",
        default=[],
        help=f"one of {', '.join(list(SCENARIOS) + list(GROUPS))} (repeatable)",
    )
    ap.add_argument("--contender", action="append", default=[], help="contender id (repeatable)")
    ap.add_argument("--server", action="append", default=[], choices=SERVERS)
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5, smoke 1)")
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the full run's message counts (and overload time) by this",
    )
    ap.add_argument("--out", default=None, help="output directory")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="do not use taskset")
    ap.add_argument(
        "--write-benchmarks",
        action="store_true",
        help="replace the results section of BENCHMARKS.md",
    )
    ap.add_argument("--note", default="", help="a line put above the results in BENCHMARKS.md")
    ap.add_argument("--list", action="store_true", help="print the scenario × contender matrix")
    ap.add_argument(
        "--history",
        nargs="?",
        const="",
        default=None,
        metavar="SINCE",
        help="no runs: print issue 19's targets in every kept run under bench/results (from the "
        "directory named SINCE on, if given)",
    )
    ap.add_argument(
        "--from-runs",
        default=None,
        help="no runs: rebuild summary.md (and BENCHMARKS.md) from an earlier runs.jsonl",
    )
    args = ap.parse_args()
    args.command_line = os.environ.get("DSC_BENCH_COMMAND", " ".join(sys.argv))
    args.commit = args.date = None
    tools = {
        "dsc_bench": os.environ.get("DSC_BENCH_BIN", "dsc-bench"),
        "rust_server": os.environ.get("DSC_BENCH_RUST_SERVER", "durable-streams-server"),
        "python": os.environ.get("DSC_BENCH_PYTHON", sys.executable),
        "node": os.environ.get("DSC_BENCH_NODE", "node"),
        "bench": str(BENCH),
    }
    if args.list:
        print(matrix_md(load_contenders()))
        return 0
    if args.history is not None:
        print(history_md(BENCH / "results", args.history))
        return 0
    if args.from_runs:
        runs = Path(args.from_runs).resolve()
        rows = [json.loads(line) for line in runs.read_text().splitlines() if line.strip()]
        meta = runs.parent / "meta.json"
        if meta.exists():
            m = json.loads(meta.read_text())
            args.command_line, args.reps, args.scale = m["command"], m["reps"], m["scale"]
            args.commit, args.date = m.get("commit"), m.get("date")
            args.warmup = m.get("warmup")
        else:
            args.warmup = None
            args.reps = max(r["rep"] for r in rows) + 1
        write_reports(rows, tools, args, runs.parent)
        return 0
    scen: list[str] = []
    for s in args.scenario or list(SCENARIOS):
        if s in GROUPS:
            scen += GROUPS[s]
        elif s in SCENARIOS:
            scen.append(s)
        else:
            ap.error(f"unknown scenario {s}")
    args.scenarios = scen
    args.servers = args.server or SERVERS
    args.reps = args.reps or (1 if args.smoke else 5)
    if args.pin and (os.cpu_count() or 1) < 2:
        log("fewer than 2 CPUs: running without pinning")
        args.pin = False
    known = {c["id"] for c in load_contenders()}
    for c in args.contender:
        if c not in known:
            ap.error(f"unknown contender {c} (known: {', '.join(sorted(known))})")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    default_out = (
        Path(tempfile.gettempdir()) / "dsc-bench-smoke" / stamp
        if args.smoke
        else BENCH / "results" / stamp
    )
    outdir = Path(args.out) / stamp if args.out else default_out
    outdir.mkdir(parents=True, exist_ok=True)
    log(
        f"scenarios {', '.join(scen)}; servers {', '.join(args.servers)}; reps {args.reps}; "
        f"output {outdir}"
    )
    args.commit = source_commit()
    args.date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    args.warmup = warmup_count("producer-json", args.smoke, args.scale)
    meta = {
        "command": args.command_line,
        "reps": args.reps,
        "scale": args.scale,
        "commit": args.commit,
        "date": args.date,
        "warmup": args.warmup,
    }
    (outdir / "meta.json").write_text(json.dumps(meta) + "\n")
    rows = run_all(args, tools, outdir)
    write_reports(rows, tools, args, outdir)
    failed = [r for r in rows if not r["ok"]]
    print(summary_md(rows, load_contenders()))
    if not rows:
        log("no runs")
        return 1
    if failed:
        for r in failed:
            log(
                f"FAILED {r['scenario']} {r['server']} rep {r['rep'] + 1} {r['contender']}: {r['error']}"
            )
        return 1
    log(f"{len(rows)} runs, all verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
