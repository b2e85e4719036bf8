"""How long the customer will likely wait: their place in the queue and the median of recent waits.

Pure functions (no I/O, no clock): the numbers come from the handoffs repository. The estimate is
the median of how long the channel's last ``SAMPLE`` taken handoffs waited; it is said as what it
is (recent waits, not a promise), and when there is no history the customer is told so.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

SAMPLE = 20  # taken handoffs of the channel the estimate rests on


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    position: int | None  # 1 = next; None when the handoff no longer waits
    median_seconds: float | None  # None without history
    based_on: int  # how many recent waits the median is of

    def to_dict(self) -> dict[str, object]:
        return {
            "position": self.position,
            "estimate_seconds": None if self.median_seconds is None else round(self.median_seconds),
            "based_on": self.based_on,
        }


def estimate(position: int | None, recent_waits: list[float]) -> WaitEstimate:
    """The estimate from the queue position and recent waits in seconds (any order)."""
    waits = [w for w in recent_waits if w >= 0 and math.isfinite(w)][:SAMPLE]
    median = statistics.median(waits) if waits else None
    return WaitEstimate(position, median, len(waits))


def duration_text(seconds: float) -> str:
    """ "less than a minute", "about 1 minute", "about 4 minutes", "about 2 hours"."""
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    return f"about {hours} hour{'s' if hours != 1 else ''}"


def waiting_text(wait: WaitEstimate) -> str:
    """What the customer reads while waiting."""
    if wait.position is None:
        return "A colleague will be with you shortly."
    place = (
        "You are next in the queue."
        if wait.position == 1
        else f"You are number {wait.position} in the queue."
    )
    if wait.median_seconds is None:
        return f"{place} We cannot estimate the wait yet: there are no recent waits to go by."
    return (
        f"{place} Recently, customers waited {duration_text(wait.median_seconds)} for a colleague "
        f"(the median of the last {wait.based_on})."
    )
