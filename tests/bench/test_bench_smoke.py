"""The benchmark itself, at toy sizes: it runs end to end, both sides complete every journey,
the ratios are computed, and it leaves no process behind. No timing is asserted: figures on a
shared 2-core machine are noise at this size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if text in args:
            found.append(args)
    return found


def test_a_tiny_benchmark_runs_both_sides_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result_file = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--journeys=4",
            "--concurrency=2",
            "--updates=3",
            "--queries=2",
            "--storm=6",
            "--storm-window=2",
            "--storm-setup-rate=20",
            "--storm-lead=2",
            "--replay-rounds=1",
            "--years=1",
            "--records-journeys=2",
            f"--out={out}",
            f"--json-out={result_file}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(result_file.read_text())
    s = result["scenarios"]

    for side in ("baseline", "senflow"):
        messages = s["messages"][side]
        assert messages["completed"] == 4 and messages["failed"] == 0
        cpu = messages["cpu_ms_per_journey"]  # every process of the phase did some work
        assert cpu["server"] > 0 and cpu["worker"] > 0 and cpu["client"] > 0
        assert abs(cpu["total"] - (cpu["server"] + cpu["worker"] + cpu["client"])) <= 0.2
        assert messages["updates"] == 4 * 3 and messages["queries"] == 4 * 2
        assert messages["journeys_per_s"] > 0
        storm = s["storm"][side]
        assert storm["set_up"] == 6
        assert storm["reminders_run"] == 6
        assert storm["reached_review_due"] == 6
        assert storm["timer_lag_p99_s"] is not None
        assert s["replay"][side]["pattern"]["failures"] == 0
    # each side ran its own workflow: senflow's histories carry the journey's state (its
    # commands, inputs and letters), the baseline's a step counter. (Not the event count: a
    # lean run has about as many events as the baseline, decision 87.)
    assert (
        s["messages"]["senflow"]["history_bytes_per_journey"]
        > 1.2 * s["messages"]["baseline"]["history_bytes_per_journey"]
    )
    for ratio in (
        s["messages"]["ratios"]["journeys_per_s"],
        s["messages"]["ratios"]["update_latency"]["p99_ms"],
        s["storm"]["ratios"]["drain_s"],
    ):
        assert isinstance(ratio, float) and ratio > 0
    assert [g["met"] is not None for g in result["goals"]] == [True] * 5

    assert s["replay"]["two_year_journeys"]["failures"] == 0
    assert s["footprint"]["runs"] >= 1
    assert s["footprint"]["largest_run_events"] < 51_200
    assert s["records"]["sqlite"]["writes_per_s"] > 0
    assert s["records"]["writes"] == 2 * 7  # start, open, note, reply, close... per journey

    # the table printed the ratios, and every server and worker it started is gone
    assert "ratio" in proc.stdout and "goal" in proc.stdout
    assert _processes_mentioning(str(out)) == []
