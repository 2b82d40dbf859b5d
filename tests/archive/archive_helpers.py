"""Helpers for the archive tests."""

from __future__ import annotations

import asyncio
from typing import Any


async def eventually(check: Any, timeout: float = 20.0, every: float = 0.1) -> Any:
    """Poll ``check()`` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        await asyncio.sleep(every)
