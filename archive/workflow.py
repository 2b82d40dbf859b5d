"""JourneyArchiver: one archiving pass, started by the ``senflow-archiver`` Temporal Schedule.

Deliberately tiny: every decision and side effect is in the ``archive_closed_runs`` activity
(which is idempotent and safe to run twice at once); the workflow only repeats it until no
closed run is left, so its history is a short, deterministic list of activity calls.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from archive.messages import (
        ArchiveBatchInput,
        ArchiveBatchResult,
        ArchivePassInput,
        ArchivePassResult,
    )

ACTIVITY = "archive_closed_runs"


@workflow.defn
class JourneyArchiver:
    """Archives the histories of closed PupilJourney runs before Temporal's retention ends.

    Input ArchivePassInput, result ArchivePassResult. Activity: archive_closed_runs, in
    batches until none is left (or max_batches). No signals, updates or queries.
    """

    @workflow.run
    async def run(self, input: ArchivePassInput) -> ArchivePassResult:
        result = ArchivePassResult()
        for _ in range(input.max_batches):
            batch = await workflow.execute_activity(
                ACTIVITY,
                ArchiveBatchInput(workflow.info().workflow_id, input.batch_size, input.where),
                result_type=ArchiveBatchResult,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(
                    maximum_interval=timedelta(minutes=1),
                    maximum_attempts=5,
                    non_retryable_error_types=["MissingPurgeKey"],
                ),
            )
            result.add(batch)
            if not batch.more:
                break
        workflow.logger.info(
            "archive pass: %d archived, %d already, %d lost, %d failed",
            result.archived,
            result.already,
            result.lost,
            result.failed,
        )
        return result
