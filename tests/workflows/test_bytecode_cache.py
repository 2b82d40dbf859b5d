"""The worker writes the bytecode cache of its workflow modules (the sandbox imports each one
afresh for every run it starts; without a cache every run would compile it from source)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from worker import cache_bytecode


def _load(path: Path, name: str) -> type:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    cls: type = module.Wf
    return cls


@pytest.fixture
def workflow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, type]:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # as PYTHONDONTWRITEBYTECODE=1
    source = tmp_path / "some_workflow.py"
    source.write_text("class Wf:\n    answer = 42\n")
    name = f"some_workflow_{os.getpid()}_{id(tmp_path)}"
    monkeypatch.delitem(sys.modules, name, raising=False)
    cls = _load(source, name)
    return source, cls


def test_writes_a_cache_the_import_system_uses(workflow_module: tuple[Path, type]) -> None:
    source, cls = workflow_module
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert not cached.exists()  # the import above wrote nothing: the environment forbids it

    cache_bytecode([cls])

    assert cached.exists()
    # a valid cache for this source: the loader takes its code from it, not from a compile
    loader = importlib.machinery.SourceFileLoader("x", str(source))
    assert loader.get_code("x") is not None
    data = cached.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER


def test_leaves_a_current_cache_alone_and_rewrites_a_stale_one(
    workflow_module: tuple[Path, type],
) -> None:
    source, cls = workflow_module
    cache_bytecode([cls])
    cached = Path(importlib.util.cache_from_source(str(source)))
    first = cached.stat().st_mtime_ns
    os.utime(cached, ns=(first - 10**9, first - 10**9))
    cache_bytecode([cls])
    assert cached.stat().st_mtime_ns == first - 10**9  # current: not written again

    source.write_text("class Wf:\n    answer = 43\n")
    os.utime(source, ns=(first + 5 * 10**9, first + 5 * 10**9))
    cache_bytecode([cls])
    assert cached.stat().st_mtime_ns != first - 10**9  # stale: rewritten


def test_a_tree_it_cannot_write_costs_only_the_compile(
    workflow_module: tuple[Path, type], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, cls = workflow_module
    source.parent.chmod(0o555)
    try:
        if os.access(source.parent, os.W_OK):  # root ignores the mode: forbid the write itself
            import compileall

            def refuse(*args: object, **kwargs: object) -> bool:
                raise PermissionError("read-only tree")

            monkeypatch.setattr(compileall, "compile_file", refuse)
        cache_bytecode([cls])  # no exception: the worker starts anyway
    finally:
        source.parent.chmod(0o755)
    assert not Path(importlib.util.cache_from_source(str(source))).exists()
