"""The ```python blocks of python/README.md, for the tests (test_readme.py) and for mypy
(`python python/tests/readme.py DIR` writes them to DIR as example_N.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> list[str]:
    """The README's Python examples, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for i, code in enumerate(examples()):
        (out / f"example_{i}.py").write_text(code, encoding="utf-8")
