"""Auditors: the journey as Temporal's histories recorded it, replay, and compliance checks."""
