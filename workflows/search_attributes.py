"""Search attributes: how admins find pupils through Temporal visibility. Opaque values only."""

from temporalio.common import SearchAttributeKey

SEN_STAGE = SearchAttributeKey.for_keyword("SenStage")
SEN_SCHOOL = SearchAttributeKey.for_keyword("SenSchool")
SEN_NEXT_REVIEW = SearchAttributeKey.for_datetime("SenNextReview")
SEN_OVERDUE = SearchAttributeKey.for_bool("SenOverdue")

ALL = (SEN_STAGE, SEN_SCHOOL, SEN_NEXT_REVIEW, SEN_OVERDUE)
