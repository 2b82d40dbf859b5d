"""What the archiver workflow and its activity exchange: plain dataclasses, no I/O, so the
workflow sandbox can pass this module through."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Problems kept in a result (the counts are always complete).
MAX_PROBLEMS = 20


@dataclass
class ArchivePassInput:
    batch_size: int = 100
    #: A pass stops after this many batches even if closed runs remain (the next pass goes on).
    max_batches: int = 100
    #: An extra visibility filter, ANDed with the closed-journeys query (tests use a task queue).
    where: str | None = None


@dataclass
class ArchiveBatchInput:
    pass_id: str
    limit: int = 100
    where: str | None = None


@dataclass
class ArchiveBatchResult:
    archived: int = 0  # stored, read back, hash-checked and marked by this batch
    already: int = 0  # another archiver marked it first
    purged: int = 0  # the pupil was erased while the run was being archived
    lost: int = 0  # closed, never archived, and already gone from Temporal
    failed: int = 0  # not marked (read-back mismatch, ...): the next pass tries again
    problems: list[str] = field(default_factory=list)
    more: bool = False  # closed runs still waiting beyond this batch's limit

    def note(self, outcome: str, what: str) -> None:
        kind = outcome.split(":", 1)[0]
        setattr(self, kind, getattr(self, kind) + 1)
        if kind in ("lost", "failed") and len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{what}: {outcome}")


@dataclass
class ArchivePassResult:
    batches: int = 0
    archived: int = 0
    already: int = 0
    purged: int = 0
    lost: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)
    more: bool = False

    def add(self, batch: ArchiveBatchResult) -> None:
        self.batches += 1
        self.archived += batch.archived
        self.already += batch.already
        self.purged += batch.purged
        self.lost += batch.lost
        self.failed += batch.failed
        self.problems = (self.problems + batch.problems)[:MAX_PROBLEMS]
        self.more = batch.more
