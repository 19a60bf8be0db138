"""Writes the fenced code blocks of one language from a Markdown file into a folder, one file
per block (example_0.EXT, ...), with the examples' server address replaced by another one.

Usage: python3 extract.py README.md LANGUAGE OUT_DIR EXT SERVER_URL [PREFIX]

PREFIX, when given, is written before each block (a Kotlin `package` line, say). Prints the
number of blocks written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# The address every README example uses (`node tests/server/start.mjs --port 4437`).
EXAMPLE_SERVER = "http://127.0.0.1:4437"


def blocks(markdown: str, language: str) -> list[str]:
    """The blocks fenced as ```LANGUAGE (or ```LANGUAGE,attributes), in order."""
    pattern = r"^```" + re.escape(language) + r"(?:,[^\n]*)?\n(.*?)^```"
    return re.findall(pattern, markdown, re.DOTALL | re.MULTILINE)


def main() -> None:
    readme, language, out, ext, server = sys.argv[1:6]
    prefix = sys.argv[6] if len(sys.argv) > 6 else ""
    found = blocks(Path(readme).read_text(encoding="utf-8"), language)
    if not found:
        sys.exit(f"no ```{language} blocks in {readme}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for i, code in enumerate(found):
        if EXAMPLE_SERVER not in code:
            sys.exit(f"{readme}: {language} block {i} does not use {EXAMPLE_SERVER}")
        text = prefix.replace("{i}", str(i)) + code.replace(EXAMPLE_SERVER, server)
        (folder / f"example_{i}.{ext}").write_text(text, encoding="utf-8")
    print(len(found))


if __name__ == "__main__":
    main()
