"""Engagement per person: ``hri_engagement``'s five levels from mutual gaze over time.

Every ``1 / rate`` seconds each person's face gives a sample: +1 when its mutual-gaze score
(:mod:`.mutual_gaze`) is above ``engagement_threshold``, -1 when it is not (or the face is
beyond ``max_distance``); no sample while the person has no face with a gaze frame. The
mean of the samples of the last ``observation_window`` seconds drives a state machine:

=============  ======================================================
from           to
=============  ======================================================
UNKNOWN        DISENGAGED, at the first decision
DISENGAGED     ENGAGING when the mean > ``engaging``
ENGAGING       DISENGAGED when < ``disengaged``; ENGAGED when > ``engaged``
ENGAGED        DISENGAGING when < ``disengaging``
DISENGAGING    ENGAGED when > ``reengaged``; DISENGAGED when < ``lost``
=============  ======================================================

Two definitions share this (:data:`DEFINITIONS`):

* ``reference``: ``hri_engagement`` as it is (thresholds -0.4, -0.6, 0.5, 0.4, 0.6, -0.5;
  the first decision once half a window of samples is in). A glance at the robot for a
  third of the window leaves DISENGAGED, and a window is longer than many encounters.
* ``default``: the same machine and the reference's upper thresholds (ENGAGED above 0.5,
  DISENGAGING below 0.4, back to ENGAGED above 0.6), but lower ones above zero: ENGAGING
  when the mean is above 0.2 (more time looking at the robot than away), back to
  DISENGAGED below 0.1 from ENGAGING and below 0.2 from DISENGAGING; the first decision once
  ``decide_after`` seconds of samples are in, over the samples there are (a person who
  stays a few seconds is rated, not only one who stays half a window). How the two compare
  with ``hri_engagement``'s labelled recordings: ``docs/ros2.md``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from ..options import check_fields

UNKNOWN, DISENGAGED, ENGAGING, ENGAGED, DISENGAGING = range(5)
"""hri_msgs/EngagementLevel's values."""
LEVEL_NAMES = ("UNKNOWN", "DISENGAGED", "ENGAGING", "ENGAGED", "DISENGAGING")


@dataclass(frozen=True)
class Thresholds:
    """The state machine's thresholds on the mean of the samples (see module)."""

    engaging: float
    disengaged: float
    engaged: float
    disengaging: float
    reengaged: float
    lost: float


#: The two definitions' thresholds (see module).
DEFINITIONS = {
    "reference": Thresholds(engaging=-0.4, disengaged=-0.6, engaged=0.5, disengaging=0.4,
                            reengaged=0.6, lost=-0.5),
    "default": Thresholds(engaging=0.2, disengaged=0.1, engaged=0.5, disengaging=0.4,
                          reengaged=0.6, lost=0.2),
}


@dataclass(frozen=True)
class EngagementOptions:
    """Parameters, named as ``hri_engagement`` names them, and the definition."""

    reference_frame: str = ""
    """The robot's frame (+x forward, +z up) mutual gaze is measured in; "": the camera's
    optical frame, turned to those axes."""
    max_distance: float = 4.0
    field_of_view: float = 60.0
    """Degrees: the half-field of attention of the people and of the robot."""
    engagement_threshold: float = 0.5
    observation_window: float = 10.0
    rate: float = 10.0
    definition: str = "default"
    decide_after: float = 2.0
    """``default`` only: seconds of samples before the first decision."""

    KINDS: ClassVar[dict[str, type]] = {
        "reference_frame": str, "max_distance": float, "field_of_view": float,
        "engagement_threshold": float, "observation_window": float, "rate": float,
        "definition": str, "decide_after": float}
    LIMITS: ClassVar[dict[str, tuple[float, float]]] = {
        "max_distance": (0.01, 1000.0), "field_of_view": (0.1, 89.0),
        "engagement_threshold": (0.0, 1.0), "observation_window": (0.1, 3600.0),
        "rate": (0.1, 1000.0), "decide_after": (0.0, 3600.0)}
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"definition": tuple(DEFINITIONS)}

    def __post_init__(self) -> None:
        check_fields(self, self.KINDS, self.LIMITS)
        if self.definition not in DEFINITIONS:
            raise ValueError(f"definition must be one of {', '.join(DEFINITIONS)}, got "
                             f"{self.definition!r}")

    @property
    def history_size(self) -> int:
        """Samples in a window."""
        return max(1, int(self.rate * self.observation_window))

    @property
    def min_samples(self) -> int:
        """Samples before the first decision."""
        if self.definition == "reference":
            return int(0.5 * self.history_size)
        return max(1, min(self.history_size, round(self.decide_after * self.rate)))


@dataclass
class PersonEngagement:
    """One person's engagement: :meth:`sample` at the options' rate, :attr:`level`."""

    options: EngagementOptions
    level: int = UNKNOWN
    history: deque[int] = field(default_factory=deque)

    def sample(self, score: float | None) -> int:
        """Take one tick's mutual-gaze score (None: no face with a gaze frame, no sample)
        and decide; the level after it."""
        if score is not None:
            self.history.append(1 if math.isfinite(score)
                                and score > self.options.engagement_threshold else -1)
            while len(self.history) > self.options.history_size:
                self.history.popleft()
        if len(self.history) < self.options.min_samples:
            return self.level
        self.level = next_level(self.level, sum(self.history) / len(self.history),
                                DEFINITIONS[self.options.definition])
        return self.level


def next_level(level: int, mean: float, t: Thresholds) -> int:
    """The state machine's step (see module)."""
    if level == UNKNOWN:
        return DISENGAGED
    if level == DISENGAGED:
        return ENGAGING if mean > t.engaging else level
    if level == ENGAGING:
        return DISENGAGED if mean < t.disengaged else ENGAGED if mean > t.engaged else level
    if level == ENGAGED:
        return DISENGAGING if mean < t.disengaging else level
    if level == DISENGAGING:
        return ENGAGED if mean > t.reengaged else DISENGAGED if mean < t.lost else level
    return level
