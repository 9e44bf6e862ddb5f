"""Request validation names the field and fills defaults."""

from __future__ import annotations

import pytest

from recops_runtime.api.errors import ServiceError, Status, http_status
from recops_runtime.api.messages import FeedbackRequest, RecommendRequest


def test_defaults_are_filled() -> None:
    request = RecommendRequest(user_id="7")
    request.validate()
    assert request.k == 10 and request.request_id
    other = RecommendRequest(user_id="7")
    other.validate()
    assert other.request_id != request.request_id


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (RecommendRequest(), "user_id"),
        (RecommendRequest(user_id="u", k=1001), "k"),
        (RecommendRequest(user_id="u", history=["1", "x" * 257]), "history[1]"),
        (RecommendRequest(user_id="u", exclude_items=["1"] * 10_001), "exclude_items"),
        (RecommendRequest(user_id="u", request_id="r" * 129), "request_id"),
    ],
)
def test_bad_recommend_requests_name_the_field(request_: RecommendRequest, field: str) -> None:
    with pytest.raises(ServiceError) as caught:
        request_.validate()
    assert caught.value.status is Status.INVALID_ARGUMENT
    assert caught.value.message.startswith(f"{field}:")
    assert http_status(caught.value.status) == 400


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (FeedbackRequest(user_id="", item_id="i", event="click"), "user_id"),
        (FeedbackRequest(user_id="u", item_id="i", event="like"), "event"),  # type: ignore[arg-type]
        (FeedbackRequest(user_id="u", item_id="i", event="click", timestamp=-1), "timestamp"),
        (FeedbackRequest(user_id="u", item_id="i", event="rating", value=float("nan")), "value"),
        (FeedbackRequest(user_id="u", item_id="i", event="watch", timestamp=1e300), "timestamp"),
        (FeedbackRequest(user_id="u", item_id="i", event="watch", timestamp=1.7e12), "timestamp"),
        (FeedbackRequest(user_id="u", item_id="i", event="watch", timestamp=8e8), "timestamp"),
        (FeedbackRequest(user_id="u", item_id="i", event="rating", value=1e300), "value"),
        (FeedbackRequest(user_id="u", item_id="i", event="rating", value=-0.5), "value"),
    ],
)
def test_bad_feedback_names_the_field(request_: FeedbackRequest, field: str) -> None:
    with pytest.raises(ServiceError) as caught:
        request_.validate()
    assert caught.value.message.startswith(f"{field}:")


def test_feedback_in_range_is_accepted() -> None:
    import time

    for timestamp, value in [(0.0, 0.0), (946_684_800.0, 0.5), (time.time() + 3600, 10.0)]:
        FeedbackRequest(
            user_id="u", item_id="i", event="rating", timestamp=timestamp, value=value
        ).validate()
