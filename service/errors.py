"""The application layer's failures, beside the domain's ``Refused`` and access's ``Forbidden``."""

from __future__ import annotations


class NotFound(Exception):
    """No such journey for this caller: missing, or another setting's (the two are never told
    apart, so a caller cannot learn which pupils exist elsewhere)."""


class Unreachable(Exception):
    """Temporal could not be reached."""
