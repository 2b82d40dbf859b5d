"""py-spy on a worker process, and the hot spots of what it recorded."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import procs


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, raw: Path) -> subprocess.Popen[bytes] | None:
    """Sample the threads holding the GIL (what costs the worker CPU), 100 times a second."""
    binary = py_spy()
    if binary is None:
        return None
    args = [binary, "record", "--gil", "--nonblocking", "-r", "100", "-f", "raw"]
    args += ["-o", str(raw), "--pid", str(pid)]
    return procs._spawn(args, raw.with_suffix(".log"))


def finish(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT, then exits
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    procs.stop(proc)


def summary(raw: Path, top: int = 30) -> str:
    """Self and inclusive share of samples per function (file paths shortened)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples (threads holding the GIL)", "", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)]
    return "\n".join(lines) + "\n"


def _short(frame: str) -> str:
    frame = re.sub(r":\d+\)$", ")", frame)
    frame = re.sub(r"\(.*/site-packages/", "(", frame)
    return re.sub(r"\(.*/lib/python3\.\d+/", "(", frame)
