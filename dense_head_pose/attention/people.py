"""Engagement of everyone in view: one :class:`~.engagement.PersonEngagement` per person,
ticked at the options' rate (the caller's clock: a live node's timer, a recording's
stamps), so a live node and a replayed recording decide alike."""

from __future__ import annotations

from collections.abc import Mapping

from .engagement import UNKNOWN, EngagementOptions, PersonEngagement
from .gazing import GazePose
from .mutual_gaze import mutual_gaze


class Engagement:
    """``engagement.tick(gazes)`` at the options' rate: the level of every person present
    (see module)."""

    def __init__(self, options: EngagementOptions) -> None:
        self.options = options
        self.people: dict[str, PersonEngagement] = {}

    def tick(self, gazes: Mapping[str, GazePose | None]) -> dict[str, int]:
        """One tick: ``gazes`` has every person present, with their face's gaze
        frame (None: no face, or no gaze frame); the levels of those people, and UNKNOWN
        for each person gone since the last tick (then forgotten)."""
        levels: dict[str, int] = {}
        for person in [p for p in self.people if p not in gazes]:
            del self.people[person]
            levels[person] = UNKNOWN
        for person, pose in gazes.items():
            state = self.people.get(person)
            if state is None:
                state = self.people[person] = PersonEngagement(self.options)
            score = None
            if pose is not None:
                score = mutual_gaze(pose[0], pose[1], self.options.field_of_view,
                                    self.options.max_distance).score
            levels[person] = state.sample(score)
        return levels


#: Ticks one stamp may catch up on; a longer gap (or time going back) restarts the clock.
MAX_CATCH_UP = 100


class Ticks:
    """A clock ticking at ``rate`` on a stream's own stamps (integer nanoseconds): the first
    stamp is the first tick; :meth:`until` gives the ticks due by each later stamp."""

    def __init__(self, rate: float) -> None:
        self.step = max(1, round(1e9 / rate))
        self.next: int | None = None
        """The next tick (None before the first stamp)."""

    def until(self, stamp_ns: int) -> list[int]:
        """The ticks due by ``stamp_ns``, oldest first (a gap of more than
        :data:`MAX_CATCH_UP` ticks, or time going back by more than one, restarts the
        clock at this stamp)."""
        if self.next is None or not \
                -self.step <= stamp_ns - self.next < MAX_CATCH_UP * self.step:
            self.next = stamp_ns
        due = []
        while self.next <= stamp_ns:
            due.append(self.next)
            self.next += self.step
        return due
