"""The README's examples run against the test server (its URLs rewritten to the server's)."""

from __future__ import annotations

import re

import pytest
from conftest import new_url
from readme import examples

EXAMPLES = examples()


def test_readme_has_both_quick_starts() -> None:
    assert len(EXAMPLES) == 2
    assert "DurableStream(" in EXAMPLES[0]
    assert "AsyncDurableStream(" in EXAMPLES[1]


@pytest.mark.parametrize("code", EXAMPLES, ids=["blocking", "asyncio"])
def test_readme_example_runs(server: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = re.sub(
        r'"http://127\.0\.0\.1:4437/v1/stream/([^"]+)"',
        lambda m: repr(new_url(server, m.group(1))),
        code,
    )
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert out.strip(), "the example printed nothing"
    if "StreamClosedError" in code:
        assert "closed at " in out
        assert "(HTTP 409, STREAM_CLOSED)" in out
    else:
        assert out.splitlines()[0] == "created"
