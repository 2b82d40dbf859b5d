"""Put the Mermaid that ``senflow diagram`` prints into docs/state-machine.md.

    .venv/bin/senflow diagram | .venv/bin/python scripts/write_state_machine_doc.py
    make diagram                                              # the same

Only the ```mermaid block is replaced; the prose around it is kept as written.
tests/test_docs.py fails when the committed block differs from today's transitions table.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "state-machine.md"
BLOCK = re.compile(r"```mermaid\n.*?```\n", re.DOTALL)


def main() -> int:
    mermaid = sys.stdin.read().strip()
    if "stateDiagram" not in mermaid:
        print("expected `senflow diagram` on stdin", file=sys.stderr)
        return 2
    text = DOC.read_text(encoding="utf-8")
    drawn = "```mermaid\n" + mermaid + "\n```\n"
    new, count = BLOCK.subn(lambda _: drawn, text, count=1)
    if count != 1:
        print(f"{DOC}: no ```mermaid block to replace", file=sys.stderr)
        return 1
    DOC.write_text(new, encoding="utf-8")
    print(f"{DOC.name}: {'redrawn' if new != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
