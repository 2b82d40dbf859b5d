"""Archive settings and their guards, without a server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from archive.blobs import FileBlobStore, blob_store
from archive.schedule import check_interval
from devserver import retention_args
from domain.commands import Refused
from settings import Settings


def test_retention_and_the_archive_come_from_the_environment() -> None:
    s = Settings.from_env(
        {
            "SENFLOW_RETENTION_DAYS": "90",
            "SENFLOW_ARCHIVE_EVERY_MINUTES": "30",
            "SENFLOW_ARCHIVE_URL": "file:///var/senflow/archive",
            "SENFLOW_ARCHIVE_SCHEDULE": "1",
            "SENFLOW_PURGE_KEY": "k",
        }
    )
    assert (s.retention, s.archive_every) == (timedelta(days=90), timedelta(minutes=30))
    assert (s.archive_url, s.ensure_archive_schedule, s.purge_key) == (
        "file:///var/senflow/archive",
        True,
        "k",
    )
    default = Settings.from_env({})
    assert default.retention == timedelta(days=30) and default.archive_every == timedelta(hours=1)
    assert default.archive_url == "db" and default.purge_key is None  # no default for a secret


def test_make_run_sets_the_namespace_retention_with_the_temporal_cli() -> None:
    args = retention_args("127.0.0.1:7233", "default", timedelta(days=30))
    assert args[1:] == [
        "operator",
        "namespace",
        "update",
        "--namespace",
        "default",
        "--retention",
        "720h",
        "--address",
        "127.0.0.1:7233",
    ]


def test_the_archiver_must_run_well_inside_the_retention() -> None:
    check_interval(timedelta(hours=6), timedelta(days=1))
    with pytest.raises(Refused, match="not well inside"):
        check_interval(timedelta(hours=12), timedelta(days=1))


def test_archive_urls(tmp_path: Path) -> None:
    assert blob_store("db") is None
    store = blob_store(tmp_path.as_uri())
    assert isinstance(store, FileBlobStore)
    location = store.put("pupil-p1/run.json.gz", b"bytes")
    assert store.get(location) == b"bytes"
    with pytest.raises(ValueError, match="leaves the archive folder"):
        store.put("../elsewhere", b"x")
    with pytest.raises(ValueError, match="documented option, not built"):
        blob_store("s3://bucket/senflow")
    with pytest.raises(ValueError, match="use 'db' or file:///"):
        blob_store("ftp://host/x")
