"""Attention and engagement frame by frame, in the frames' own time: what ``bag`` writes
for a camera, the same as the live node publishes it (:mod:`.gazing`, :mod:`.people`).

Every frame gives its gazes; the engagement ticks at the options' rate on the frames'
stamps (a frame later than several ticks catches up on them with its faces, as the live
node's timer samples the latest frame). Each face's person is its anonymous person
(:mod:`.person_ids`): offline there is no person manager.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..pipeline.results import Face
from .engagement import LEVEL_NAMES, UNKNOWN, EngagementOptions
from .gazing import ROBOT, gaze_poses, gazes
from .people import Engagement, Ticks
from .person_ids import anonymous_person_id


@dataclass
class FrameAttention:
    """One camera's gazes and engagement levels, frame by frame (see module)."""

    options: EngagementOptions = field(default_factory=EngagementOptions)
    final: dict[str, str] = field(default_factory=dict)
    """Each person's last level while present (UNKNOWN once gone is not kept)."""

    def __post_init__(self) -> None:
        self._engagement = Engagement(self.options)
        self._clock = Ticks(self.options.rate)

    def frame(self, stamp_ns: int, faces: Sequence[Face], names: Sequence[str]
              ) -> tuple[list[tuple[str, str]], list[tuple[int, dict[str, int]]]]:
        """A frame's gazes (sender, receiver persons; receiver "" the robot) and the ticks
        due by its stamp: (tick stamp in ns, each person's level)."""
        poses = gaze_poses(faces, names)
        persons = {name: anonymous_person_id(name) for name in names}
        seen = [(persons[s], persons[r] if r != ROBOT else ROBOT)
                for s, r in gazes(poses, self.options)]
        present = {persons[name]: poses.get(name) for name in names}
        ticks = []
        for at in self._clock.until(stamp_ns):
            levels = self._engagement.tick(present)
            ticks.append((at, levels))
            for person, level in levels.items():
                if level != UNKNOWN or person in present:
                    self.final[person] = LEVEL_NAMES[level]
        return seen, ticks
