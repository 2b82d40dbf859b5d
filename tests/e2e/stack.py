"""`senflow up` as `make run` starts it, in a folder laid out like a checkout (`.venv` and
`tests/` beside it, state in `./.senflow`), on free ports; stopped with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from smtp_sink import free_port

ROOT = Path(__file__).resolve().parents[2]
SENFLOW = str(Path(sys.executable).parent / "senflow")


@contextmanager
def senflow_up(folder: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """Yield the environment a second terminal would have, and the state directory."""
    (folder / ".venv").symlink_to(Path(sys.executable).parent.parent)
    (folder / "tests").symlink_to(ROOT / "tests")
    state = folder / ".senflow"
    port, ui_port, api_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENFLOW_", "TEMPORAL_"))}
    env.update(
        {
            "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "SENFLOW_LOG_FORMAT": "json",
            "SENFLOW_HEARTBEAT_FILE": str(state / "worker.alive"),
            "SENFLOW_API_URL": f"http://127.0.0.1:{api_port}",
            "SENFLOW_CONFIG_DIR": str(folder / "config"),  # not the ~/.config of whoever tests
        }
    )
    up = subprocess.Popen(
        [
            SENFLOW,
            "up",
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--api-port",
            str(api_port),
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        token = state / "tokens" / "senco-1"
        while not token.exists() or _list(env, folder, token.read_text().strip()):
            assert up.poll() is None, "senflow up exited early"
            assert time.monotonic() < deadline, "the service did not come up"
            time.sleep(0.5)
        yield env, state
    finally:
        up.send_signal(signal.SIGINT)
        try:
            output, _ = up.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            output, _ = up.communicate()
        assert up.returncode == 0, output
        assert "stopped." in output
        with socket.socket() as sock:  # the server is gone with it
            assert sock.connect_ex(("127.0.0.1", port)) != 0


def _list(env: dict[str, str], folder: Path, token: str) -> int:
    done = subprocess.run(
        [SENFLOW, "list"],
        cwd=folder,
        env={**env, "SENFLOW_TOKEN": token},
        capture_output=True,
        timeout=60,
    )
    return done.returncode
