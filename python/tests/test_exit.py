"""Interpreter exit while the runtime is busy (exit_scenarios.py, each run in its own process).

Before the exit hook waited for runtime threads to leave Python, an asyncio program crashed at
exit (SIGSEGV, or SIGABRT in PyGILState_Release) in up to 40% of runs: a runtime thread
completing an asyncio future was inside Python when the interpreter started finalizing. The
race is timing-dependent, hence many runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import new_url

SCRIPT = Path(__file__).with_name("exit_scenarios.py")

# (scenario, runs, expected output); about 20 runs in all, a few at a time.
PLAN = [
    ("async-append", 8, "OK 1"),
    ("live-tail", 6, "OK 20"),
    ("live-left-open", 2, "OK 20"),
    ("read-left-running", 4, "OK 20"),
    ("producer-pending", 2, "OK 20"),
    ("debug-logging", 2, "OK 20"),
]
PARALLEL = 2
PIPES: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}


def command(scenario: str, url: str) -> list[str]:
    # faulthandler: a crash prints which thread it hit (the C stack needs a core dump and gdb).
    return [sys.executable, "-X", "faulthandler", str(SCRIPT), scenario, url]


def run_all(server: str, jobs: list[tuple[str, str]]) -> list[tuple[str, int, str, str]]:
    """Runs (scenario, expected) jobs, PARALLEL at a time: (scenario, status, stdout, stderr)."""
    results: list[tuple[str, int, str, str]] = []
    pending = list(jobs)
    while pending:
        batch, pending = pending[:PARALLEL], pending[PARALLEL:]
        procs = [
            (name, subprocess.Popen(command(name, new_url(server, name)), **PIPES))
            for name, _ in batch
        ]
        for name, proc in procs:
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            results.append((name, proc.returncode, out, err))
    return results


def check(results: list[tuple[str, int, str, str]], expected: dict[str, str]) -> None:
    failed = [
        f"{name}: exit status {code}, stdout {out!r}, stderr tail {err[-600:]!r}"
        for name, code, out, err in results
        if code != 0 or out.strip() != expected[name]
    ]
    assert not failed, f"{len(failed)} of {len(results)} runs failed:\n" + "\n".join(failed)


def test_exit_while_the_runtime_is_busy(server: str) -> None:
    jobs = [(name, out) for name, runs, out in PLAN for _ in range(runs)]
    started = time.monotonic()
    results = run_all(server, jobs)
    check(results, {name: out for name, _, out in PLAN})
    # A hint for whoever tunes the plan; not a requirement.
    print(f"{len(results)} runs in {time.monotonic() - started:.1f} s")


def test_exit_waits_for_a_callable_still_running(server: str) -> None:
    """A header callable running Python code on a runtime thread at exit: the exit waits for it
    (it used to be abandoned after a second and crash the interpreter when it resumed)."""
    check(run_all(server, [("slow-callable", "OK 1")]), {"slow-callable": "OK 1"})


@pytest.mark.parametrize("scenario", ["after-shutdown"])
def test_after_the_exit_hook(server: str, scenario: str) -> None:
    """Once the exit hook ran, the async API raises RuntimeError and the blocking API works."""
    check(run_all(server, [(scenario, "OK 1")]), {scenario: "OK 1"})
