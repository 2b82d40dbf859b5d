"""The docs say what the code does now: the drawn state machine, links, cited decisions."""

from __future__ import annotations

import re
from pathlib import Path

import starter

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
MERMAID = re.compile(r"```mermaid\n(.*?)```", re.DOTALL)


def test_the_state_machine_page_draws_todays_transition_table() -> None:
    blocks = MERMAID.findall((ROOT / "docs" / "state-machine.md").read_text(encoding="utf-8"))
    assert len(blocks) == 1
    assert blocks[0].strip() == starter.diagram().strip(), (
        "docs/state-machine.md is not what `senflow diagram` draws today: run `make diagram`"
    )


def test_the_readme_links_the_state_machine_instead_of_drawing_it() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/state-machine.md)" in readme
    assert "```mermaid" not in readme


def test_every_relative_link_in_the_readme_and_docs_names_a_file_that_exists() -> None:
    missing = []
    for page in [ROOT / "README.md", *DOCS]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                missing.append(f"{page.relative_to(ROOT)} -> {target}")
    assert missing == []


def test_every_decision_cited_in_code_or_docs_is_in_the_decisions_page() -> None:
    decisions = (ROOT / "docs" / "decisions.md").read_text(encoding="utf-8")
    recorded = {int(n) for n in re.findall(r"^(\d+)\. \*\*", decisions, re.MULTILINE)}
    tops = [p for p in ROOT.iterdir() if not p.name.startswith(".") and "venv" not in p.name]
    paths = [p for top in tops for p in ([top] if top.is_file() else top.rglob("*"))]
    cited: dict[int, str] = {}
    for path in sorted(paths):
        if path.suffix not in {".py", ".md"}:
            continue
        text = path.read_text(encoding="utf-8")
        for first, last in re.findall(r"[Dd]ecisions? (\d+)(?:\s*[–-]\s*(\d+))?", text):
            for n in range(int(first), int(last or first) + 1):
                cited.setdefault(n, str(path.relative_to(ROOT)))
    assert cited, "the pattern finds no citation at all"
    assert {n: where for n, where in cited.items() if n not in recorded} == {}
