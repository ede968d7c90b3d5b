"""Engagement replayed from a recording's TF and ids: ``dense-head-pose engagement``.

What ``hri_engagement`` listens to is read back in recording order: ``/tf`` and
``/tf_static`` (the faces' ``gaze_<id>`` frames), ``/humans/faces/tracked``,
``/humans/persons/tracked`` and ``/humans/persons/<id>/face_id``. Every ``1 / rate``
seconds of recording time, every tracked person with a tracked face gets its sample from
the latest gaze frame (:class:`~..attention.people.Engagement`). A recording without
persons (faces only) gets the anonymous persons ``hri_person_manager`` would make
(:mod:`..attention.person_ids`).

The robot's frame (``--reference-frame``) is taken as +x forward, +z up; a frame whose name
says it is optical, or, when none is given, the camera frame the faces are published in
(``camera_link`` is used instead when the recording has it), as +z forward: it is turned
to the robot's axes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..attention.engagement import LEVEL_NAMES, EngagementOptions
from ..attention.mutual_gaze import OPTICAL_IN_BODY
from ..attention.people import Engagement, GazePose, Ticks
from ..attention.person_ids import anonymous_person_id
from ..interfaces.tf_tree import TfTree
from .bag_input import open_bag
from .bag_types import BagError, typestore

PERSON_FACE = re.compile(r"/humans/persons/([^/]+)/face_id")
#: The robot frame used when none is given and the recording has it.
ROBOT_FRAME = "camera_link"


@dataclass
class PersonLevels:
    """One person's engagement over a recording: each change of level, and the last."""

    recording: str
    person: str
    face: str = ""
    levels: list[tuple[float, str]] = field(default_factory=list)

    left_s: float | None = None
    """When the person stopped being tracked, if they did (their level then is UNKNOWN)."""

    @property
    def final(self) -> str:
        """The last level while the person was tracked."""
        kept = [name for t, name in self.levels if self.left_s is None or t < self.left_s]
        return kept[-1] if kept else LEVEL_NAMES[0]

    def to_json(self) -> dict[str, Any]:
        return {"recording": self.recording, "person": self.person, "face": self.face,
                "levels": [[round(t, 3), name] for t, name in self.levels],
                "final": self.final,
                "left_s": None if self.left_s is None else round(self.left_s, 3)}


class _Scene:
    """What the recording has said so far: TF, tracked faces and persons, persons' faces."""

    def __init__(self) -> None:
        self.tree = TfTree()
        self.faces: list[str] = []
        self.persons: list[str] | None = None  # None: no person manager in the recording
        self.face_of: dict[str, str] = {}

    def people(self) -> dict[str, str]:
        """Every person present and their face id ("" when their face is not tracked)."""
        if self.persons is None:
            return {anonymous_person_id(face): face for face in self.faces}
        return {p: self.face_of.get(p, "") if self.face_of.get(p, "") in self.faces else ""
                for p in self.persons}


def _reference(scene: _Scene, asked: str | None) -> tuple[str, bool] | None:
    """The reference frame and whether it has optical axes (see module); None while
    nothing tells yet."""
    if asked:
        return asked, "optical" in asked
    if ROBOT_FRAME in scene.tree:
        return ROBOT_FRAME, False
    for face in scene.faces:
        parent = scene.tree.parent(f"face_{face}")
        if parent is not None:
            return parent, True
    return None


def _gaze(scene: _Scene, face: str, reference: tuple[str, bool]) -> GazePose | None:
    if not face:
        return None
    pose = scene.tree.lookup(reference[0], f"gaze_{face}")
    if pose is None:
        return None
    if reference[1]:
        return OPTICAL_IN_BODY @ pose[0], OPTICAL_IN_BODY @ pose[1]
    return pose


def replay_engagement(path: str | Path, options: EngagementOptions) -> list[PersonLevels]:
    """Every person's engagement over the recording ``path`` (see module)."""
    store, hri = typestore()
    if not hri:
        raise BagError("replaying engagement needs hri_msgs' message definitions "
                       "(ros-$ROS_DISTRO-hri-msgs, or a colcon build of hri_msgs sourced)")
    name = Path(path).name
    scene = _Scene()
    engagement = Engagement(options)
    people: dict[str, PersonLevels] = {}
    clock = Ticks(options.rate)

    def tick(at: int) -> None:
        reference = _reference(scene, options.reference_frame or None)
        present = scene.people()
        gazes = {p: (_gaze(scene, face, reference) if reference else None)
                 for p, face in present.items()}
        for person, level in engagement.tick(gazes).items():
            entry = people.setdefault(person, PersonLevels(name, person))
            entry.face = present.get(person, entry.face) or entry.face
            entry.left_s = None if person in present else at * 1e-9
            if not entry.levels or entry.levels[-1][1] != LEVEL_NAMES[level]:
                entry.levels.append((at * 1e-9, LEVEL_NAMES[level]))

    with open_bag(path, store) as bag:
        topics = {"/tf", "/tf_static", "/humans/faces/tracked", "/humans/persons/tracked"}
        topics |= {t for t in bag.topics if PERSON_FACE.fullmatch(t)}
        if not {"/tf", "/humans/faces/tracked"} <= set(bag.topics):
            raise BagError(f"{path}: no /tf and /humans/faces/tracked to replay engagement "
                           "from (a recording of a ROS4HRI face detector's outputs)")
        for topic, msgtype, log_ns, data in bag.messages(topics):
            for at in clock.until(log_ns):  # what was known before this message
                tick(at)
            message = bag.deserialize(data, msgtype)
            if topic in ("/tf", "/tf_static"):
                for transform in message.transforms:
                    scene.tree.set_message(transform)
            elif topic == "/humans/faces/tracked":
                scene.faces = list(message.ids)
            elif topic == "/humans/persons/tracked":
                scene.persons = list(message.ids)
            else:
                match = PERSON_FACE.fullmatch(topic)
                if match:
                    scene.face_of[match.group(1)] = message.data
        if clock.next is not None:  # one more, with the last messages
            tick(clock.next)
    return sorted(people.values(), key=lambda p: p.person)
