"""Search attributes: how admins find pupils through Temporal visibility. Opaque values only."""

from temporalio.common import SearchAttributeKey

SEN_STAGE = SearchAttributeKey.for_keyword("SenStage")
SEN_SCHOOL = SearchAttributeKey.for_keyword("SenSchool")
SEN_NEXT_REVIEW = SearchAttributeKey.for_datetime("SenNextReview")
SEN_OVERDUE = SearchAttributeKey.for_bool("SenOverdue")
#: The Code a journey follows: code_2001 or code_2014 (the 2014 reform).
SEN_CODE = SearchAttributeKey.for_keyword("SenCode")

ALL = (SEN_STAGE, SEN_SCHOOL, SEN_NEXT_REVIEW, SEN_OVERDUE, SEN_CODE)
