"""The README's walk-through, pasted as written into a second terminal of a stack started as
`make run` starts it: every command exits as the README says (0, or the `# exit N` it notes)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import ROOT, senflow_up

MARK = "<!-- walkthrough -->"
EXPECTED = re.compile(r"#\s*exit (\d+)\s*$")


def walkthrough_commands(readme: str) -> list[tuple[str, int]]:
    """Each command of the marked ```sh blocks (continuation lines joined), with the exit
    status the README promises for it."""
    commands: list[tuple[str, int]] = []
    for block in readme.split(MARK)[1:]:
        body = block.split("```sh\n", 1)[1].split("```", 1)[0]
        pending = ""
        for line in body.splitlines():
            if pending:
                line = pending + "\n" + line
                pending = ""
            if line.rstrip().endswith("\\"):
                pending = line
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            found = EXPECTED.search(line)
            commands.append((line, int(found.group(1)) if found else 0))
    return commands


def test_the_walkthrough_is_found_with_its_refusals() -> None:
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    assert len(commands) > 40
    assert [rc for _, rc in commands].count(1) == 3  # the refusals it shows on purpose
    assert any("parent-response" in c for c, _ in commands)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("readme")
    with senflow_up(folder) as (env, _state):
        yield env, folder


@pytest.mark.e2e
def test_the_readme_walkthrough_runs_as_written(checkout: tuple[dict[str, str], Path]) -> None:
    env, folder = checkout
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    script = "".join(f'{command}\necho "@@rc {i} $?"\n' for i, (command, _) in enumerate(commands))
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )
    codes = {int(i): int(rc) for i, rc in re.findall(r"^@@rc (\d+) (\d+)$", done.stdout, re.M)}
    wrong = [
        f"{command!r}: exit {codes.get(i)}, the README says {want}"
        for i, (command, want) in enumerate(commands)
        if codes.get(i) != want
    ]
    assert wrong == [], f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert (folder / "p042.html").read_text().startswith("<!DOCTYPE html>")
