"""The README's examples run against the test server (its URLs rewritten to the server's)."""

from __future__ import annotations

import pytest
from conftest import new_url
from readme import examples

EXAMPLES = examples()


def test_readme_has_every_quick_start() -> None:
    assert len(EXAMPLES) == 5
    assert "DurableStream(" in EXAMPLES[0]
    assert "AsyncDurableStream(" in EXAMPLES[1]
    assert "iter_json_batches" in EXAMPLES[2]
    assert "IdempotentProducer(" in EXAMPLES[3]
    assert "Subscriptions(" in EXAMPLES[4]


@pytest.mark.parametrize(
    "code", EXAMPLES, ids=["blocking", "asyncio", "read", "producer", "subscriptions"]
)
def test_readme_example_runs(server: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The examples name their own streams (some per run); each test gets its own prefix,
    # except the subscription example, which needs the server's stream root itself.
    if "Subscriptions(" in code:
        code = code.replace("http://127.0.0.1:4437", server)
    else:
        code = code.replace("http://127.0.0.1:4437/v1/stream", new_url(server, "readme"))
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert out.strip(), "the example printed nothing"
    if "iter_json_batches" in code:
        assert "order 2" in out
        assert out.strip().endswith("stream closed: True")
    elif "IdempotentProducer" in code:
        assert "epoch 0 seq" in out
        assert "duplicate: False" in out
        assert "final offset: " in out
    elif "Subscriptions(" in code:
        assert "created: True" in out
        assert "{'order': 1}" in out
        assert "{'order': 2}" in out
        assert out.strip().endswith("acked: True")
    elif "StreamClosedError" in code:
        assert "closed at " in out
        assert "(HTTP 409, STREAM_CLOSED)" in out
    else:
        assert out.splitlines()[0] == "created"
