"""The wait estimate: the median of recent waits, said honestly (pure, no clock)."""

from __future__ import annotations

import pytest

from voicebot.desk.waits import SAMPLE, duration_text, estimate, waiting_text


def test_the_estimate_is_the_median_of_recent_waits() -> None:
    wait = estimate(3, [60.0, 600.0, 120.0, 30.0, 240.0])
    assert wait.position == 3 and wait.median_seconds == 120.0 and wait.based_on == 5
    assert wait.to_dict() == {"position": 3, "estimate_seconds": 120, "based_on": 5}
    assert waiting_text(wait) == (
        "You are number 3 in the queue. Recently, customers waited about 2 minutes for a colleague "
        "(the median of the last 5)."
    )


def test_only_the_newest_sample_counts_and_bad_numbers_are_ignored() -> None:
    newest_first = [10.0] * SAMPLE + [9000.0] * 30
    assert estimate(1, newest_first).median_seconds == 10.0
    assert estimate(1, [float("nan"), -5.0, 90.0]).based_on == 1


def test_without_history_the_customer_is_told_so() -> None:
    wait = estimate(1, [])
    assert wait.median_seconds is None and wait.to_dict()["estimate_seconds"] is None
    assert waiting_text(wait) == (
        "You are next in the queue. We cannot estimate the wait yet: there are no recent waits to go by."
    )


def test_a_handoff_no_longer_waiting_has_no_place() -> None:
    assert waiting_text(estimate(None, [60.0])) == "A colleague will be with you shortly."


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "less than a minute"),
        (59.9, "less than a minute"),
        (60, "about 1 minute"),
        (61, "about 2 minutes"),
        (89 * 60, "about 89 minutes"),
        (3 * 3600, "about 3 hours"),
    ],
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text
