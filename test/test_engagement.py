"""Engagement: ``hri_engagement``'s upstream synthetic scenarios, its labelled recordings
replayed through ``dense-head-pose engagement``, and the anonymous persons' names.

The scenarios are upstream's (``reference_test_synth_data.py``, read, not run: it needs
libhri): a face's gaze frame held in front of, beside or turned away from the robot at
10 Hz, one or two people, several states in a row; from 1.1 windows into each state the
level must be ENGAGED where the person looks at the robot and DISENGAGED where not, and
every change must be one of the state machine's transitions. Both definitions pass them.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import SHARED

from dense_head_pose.attention.engagement import (
    DEFINITIONS,
    DISENGAGED,
    DISENGAGING,
    ENGAGED,
    ENGAGING,
    UNKNOWN,
    EngagementOptions,
)
from dense_head_pose.attention.mutual_gaze import mutual_gaze
from dense_head_pose.attention.people import Engagement
from dense_head_pose.attention.person_ids import anonymous_person_id, std_hash

REFERENCE = SHARED / "ros" / "hri_engagement_tests"


def _hri_definitions() -> bool:
    """Whether hri_msgs' message definitions are found (a colcon build sourced, ROS
    installed): replaying and writing ROS4HRI recordings needs them; the core stacks have
    none (then skipped, or failed where ``DHP_REQUIRE_ROS=1`` says the ROS layer is set up)."""
    from dense_head_pose.recordings.bag_types import typestore

    return typestore()[1]


HRI = _hri_definitions()
needs_hri = pytest.mark.skipif(
    not HRI and os.environ.get("DHP_REQUIRE_ROS") != "1",
    reason="hri_msgs' message definitions not found (the ROS layer is not set up)")
WINDOW, RATE, FOV = 10.0, 10.0, math.radians(60.0)
ALLOWED = {(UNKNOWN, UNKNOWN), (UNKNOWN, DISENGAGED), (DISENGAGED, DISENGAGED),
           (DISENGAGED, ENGAGING), (ENGAGING, ENGAGING), (ENGAGING, DISENGAGED),
           (ENGAGING, ENGAGED), (ENGAGED, ENGAGED), (ENGAGED, DISENGAGING),
           (DISENGAGING, DISENGAGING), (DISENGAGING, ENGAGED), (DISENGAGING, DISENGAGED)}


def _rotation(roll: float = 0.0, pitch: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """Static-axes x, then y, then z (tf_transformations' default ``sxyz``)."""
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch),
                              math.sin(pitch), math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


FRONT, LEFT, RIGHT = (1.0, 0.0), (math.cos(FOV), math.sin(FOV)), (math.cos(FOV), -math.sin(FOV))
SLIGHTLY_LEFT = (math.cos(FOV / 4), math.sin(FOV / 4))
SLIGHTLY_RIGHT = (math.cos(FOV / 4), -math.sin(FOV / 4))
FACING, TURNED_LEFT, TURNED_RIGHT = math.pi, math.pi - FOV, math.pi + FOV
TURNED_SLIGHTLY_LEFT, TURNED_SLIGHTLY_RIGHT = math.pi - FOV / 4, math.pi + FOV / 4
#: the gaze frame (optical axes) in the head frame (x forward)
GAZE_IN_HEAD = _rotation(roll=-math.pi / 2, yaw=-math.pi / 2)


@dataclass(frozen=True)
class State:
    engaged: bool = True
    position: tuple[float, float] = FRONT
    heading: float = FACING
    duration: float = 1.5 * WINDOW


SCENARIOS = {
    "one_person_in_front": [[State()]],
    "one_person_look_slightly_left": [[State(heading=TURNED_SLIGHTLY_LEFT)]],
    "one_person_look_slightly_right": [[State(heading=TURNED_SLIGHTLY_RIGHT)]],
    "one_person_look_left": [[State(False, heading=TURNED_LEFT)]],
    "one_person_look_right": [[State(False, heading=TURNED_RIGHT)]],
    "one_person_out_fov_left": [[State(False, LEFT, TURNED_RIGHT)]],
    "one_person_out_fov_right": [[State(False, RIGHT, TURNED_LEFT)]],
    "two_people_in_front": [[State(True, SLIGHTLY_LEFT, TURNED_SLIGHTLY_RIGHT)],
                            [State(True, SLIGHTLY_RIGHT, TURNED_SLIGHTLY_LEFT, 8.0)]],
    "two_people_one_out_fov": [[State()], [State(False, LEFT, TURNED_RIGHT)]],
    "two_people_one_look_away": [[State(False, heading=TURNED_LEFT)],
                                 [State(True, SLIGHTLY_LEFT, TURNED_SLIGHTLY_RIGHT)]],
    "one_person_swipe_look": [[State(False, heading=TURNED_LEFT), State(),
                               State(False, heading=TURNED_RIGHT)]],
    "one_person_move_across": [[State(False, LEFT, TURNED_RIGHT), State(),
                                State(False, RIGHT, TURNED_LEFT)]],
}


def _state_at(states: list[State], t: float) -> tuple[State, float] | None:
    """The state a person is in at ``t`` and when it began; None once they have left."""
    start = 0.0
    for state in states:
        if t <= start + state.duration + 1e-9:
            return state, start
        start += state.duration
    return None


@pytest.mark.parametrize("definition", sorted(DEFINITIONS))
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_upstream_synthetic_scenarios(scenario: str, definition: str) -> None:
    people = SCENARIOS[scenario]
    engagement = Engagement(EngagementOptions(definition=definition, observation_window=WINDOW,
                                              rate=RATE))
    last = {f"p{i}": UNKNOWN for i in range(len(people))}
    tested = 0
    end = max(sum(s.duration for s in states) for states in people)
    for k in range(round(end * RATE) + 1):
        t = k / RATE
        present = {f"p{i}": _state_at(states, t) for i, states in enumerate(people)}
        gazes = {}
        for person, now in present.items():
            if now is not None:
                state = now[0]
                head = _rotation(yaw=state.heading)
                gazes[person] = (head @ GAZE_IN_HEAD, np.array([*state.position, 0.0]))
        levels = engagement.tick(gazes)
        for person, level in levels.items():
            if person not in gazes:
                continue  # left: upstream's tester stops listening to them
            assert (last[person], level) in ALLOWED, (person, t, last[person], level)
            last[person] = level
            state, start = present[person]
            if t > start + 1.1 * WINDOW:
                assert level == (ENGAGED if state.engaged else DISENGAGED), (person, t, level)
                tested += 1
    assert tested > 0


def test_mutual_gaze_of_the_scenarios_poses() -> None:
    """The score itself: a face 1 m ahead looking straight at the robot, a quarter of the
    field off, at its edge, and beside the robot out of its field."""
    facing = _rotation(yaw=FACING) @ GAZE_IN_HEAD
    ahead = np.array([1.0, 0.0, 0.0])
    full = mutual_gaze(facing, ahead)
    assert full.gaze_ab == pytest.approx(1.0) and full.gaze_ba == pytest.approx(1.0)
    assert full.score == pytest.approx(math.log(4.0) / math.log(5.0))
    slightly = mutual_gaze(_rotation(yaw=TURNED_SLIGHTLY_LEFT) @ GAZE_IN_HEAD, ahead)
    assert slightly.gaze_ab == pytest.approx(1 - math.tan(FOV / 4) / math.tan(FOV))
    assert mutual_gaze(_rotation(yaw=TURNED_LEFT) @ GAZE_IN_HEAD, ahead).score == \
        pytest.approx(0.0, abs=1e-9)
    beside = mutual_gaze(_rotation(yaw=TURNED_RIGHT) @ GAZE_IN_HEAD, np.array([*LEFT, 0.0]))
    assert beside.gaze_ab == pytest.approx(1.0) and beside.score == pytest.approx(0.0, abs=1e-9)
    assert mutual_gaze(facing, np.array([4.5, 0.0, 0.0])).score == 0.0  # beyond max_distance
    assert mutual_gaze(facing, np.array([math.nan, 0.0, 0.0])).score == 0.0


def _labelled() -> list[tuple[str, str, str]]:
    """(recording directory, person, label) of the 12 one-person and the 2 simple ones."""
    listing = json.loads((REFERENCE / "complex_bags" / "list_of_bags.json").read_text())
    names = {"3": "ENGAGED", "1": "DISENGAGED"}
    cases = []
    for group in listing["single_person"].values():
        for bag, person in zip(group["rosbag"], group["person_id"]):
            cases.append((str(REFERENCE / "complex_bags" / bag.removesuffix(".bag")), person,
                          names[str(group["expected_result"])]))
    cases += [(str(REFERENCE / "data" / "bag_1_engaged"), "", "ENGAGED"),
              (str(REFERENCE / "data" / "bag_2_disengaged"), "", "DISENGAGED")]
    return cases


def _replay(definition: str, recordings: list[str]) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-m", "dense_head_pose", "engagement", "--json", "--definition",
         definition, *recordings], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def _finals(definition: str) -> list[tuple[str, str]]:
    """(label, final level) of each labelled recording's person, replayed by the CLI."""
    cases = _labelled()
    rows = _replay(definition, [path for path, _, _ in cases])
    finals = []
    for path, person, label in cases:
        name = path.rsplit("/", 1)[-1]
        mine = [r for r in rows if r["recording"] == name and (not person or
                                                                r["person"] == person)]
        assert mine, (name, person)
        for row in mine:
            levels = [level for _, level in row["levels"]]
            assert all(step in _named(ALLOWED) for step in itertools.pairwise(levels)
                       if step[1] != "UNKNOWN"), (name, levels)
        # the simple recordings have two faces (one briefly): the one seen longest
        row = max(mine, key=lambda r: (r["left_s"] or 1e12) - r["levels"][0][0])
        finals.append((label, row["final"]))
    return finals


def _named(pairs: set[tuple[int, int]]) -> set[tuple[str, str]]:
    names = ("UNKNOWN", "DISENGAGED", "ENGAGING", "ENGAGED", "DISENGAGING")
    return {(names[a], names[b]) for a, b in pairs}


@needs_hri
@pytest.mark.skipif(not REFERENCE.is_dir(), reason="hri_engagement's recordings not beside")
def test_reference_definition_replays_as_upstream_describes() -> None:
    """hri_engagement as it is: every engaged recording ends ENGAGED, and none of the
    disengaged ones DISENGAGED (a third of a window of glances leaves DISENGAGED)."""
    finals = _finals("reference")[:12]
    assert [f for label, f in finals if label == "ENGAGED"] == ["ENGAGED"] * 6
    assert not [f for label, f in finals if label == "DISENGAGED" and f == "DISENGAGED"]


@needs_hri
@pytest.mark.skipif(not REFERENCE.is_dir(), reason="hri_engagement's recordings not beside")
def test_default_definition_agrees_with_the_labels() -> None:
    finals = _finals("default")
    agree = [label == final for label, final in finals]
    assert all(agree[12:]), finals[12:]  # the two simple recordings
    assert all(f == "ENGAGED" for label, f in finals if label == "ENGAGED"), finals
    assert sum(agree[:12]) >= 10, finals  # docs/ros2.md: where and why the others differ


def test_anonymous_person_names_follow_hri_person_manager() -> None:
    """The person named after a face's std::hash, as libstdc++ computes it (checked
    against a program compiled here when a C++ compiler is present)."""
    faces = ["f00000", "959e0", "", "a" * 8, "face_with_a_much_longer_identifier_éé"]
    for face in faces:
        name = anonymous_person_id(face)
        assert name.startswith("anonymous_person_") and len(name) == len("anonymous_person_") + 5
        assert set(name.removeprefix("anonymous_person_")) <= set("abcdefghij")
    assert len({anonymous_person_id(f) for f in faces}) == len(faces)
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler to compare std::hash with")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "hash.cpp"
        source.write_text(
            "#include <functional>\n#include <iostream>\n#include <string>\n"
            "int main(int argc, char** argv) { for (int i = 1; i < argc; ++i) "
            "std::cout << std::hash<std::string>{}(std::string(argv[i])) << \"\\n\"; }\n")
        program = Path(tmp) / "hash"
        subprocess.run([compiler, "-O1", "-o", str(program), str(source)], check=True,
                       timeout=120)
        printed = subprocess.run([str(program), *faces], capture_output=True, text=True,
                                 check=True).stdout.split()
    assert [int(x) for x in printed] == [std_hash(f) for f in faces]


# --------------------------------------------------------------- from images and bags
def _frontal_and_turned() -> tuple[np.ndarray, np.ndarray]:
    """A face looking into the camera (the test image) and one turned away (AFLW2000-3D
    image00170, in profile), each in a VGA frame."""
    import cv2
    from helpers import TESTDATA

    frontal = cv2.imread(str(TESTDATA / "one_face.jpg"))
    turned = np.zeros((480, 640, 3), np.uint8)
    turned[15:465, 95:545] = cv2.imread(str(SHARED / "benchmarks" / "AFLW2000" /
                                            "image00170.jpg"))
    return frontal, turned


def test_mutual_gaze_of_real_faces_in_rows(estimator) -> None:
    """The CSV rows' (and FaceArray's) mutual gaze: high for a face looking into the
    camera, near zero in profile; a mirror image looks at the camera alike."""
    from dense_head_pose.recordings.rows import face_rows

    frontal, turned = _frontal_and_turned()
    looking = face_rows(0, "c", estimator(frontal).faces, ["a"])[0].mutual_gaze
    mirrored = face_rows(0, "c", estimator(frontal[:, ::-1].copy()).faces, ["a"])[0].mutual_gaze
    away = face_rows(0, "c", estimator(turned).faces, ["a"])[0].mutual_gaze
    assert looking > 0.5 and away < 0.2, (looking, away)
    assert mirrored == pytest.approx(looking, abs=0.1)


@needs_hri
def test_bag_writes_gazes_and_engagement(tmp_path) -> None:
    """``bag --hri`` on a camera recording: the face looking into the camera gazes at the
    robot and its anonymous person ends ENGAGED; turned away, DISENGAGED and no gaze."""
    from bag_files import read_bag, write_camera_bag
    from helpers import PACK

    frontal, turned = _frontal_and_turned()
    finals = {}
    for name, image in (("frontal", frontal), ("turned", turned)):
        recording = write_camera_bag(tmp_path / name, [image] * 100)  # 4 s at 25 Hz
        out = tmp_path / f"{name}_out"
        result = subprocess.run(
            [sys.executable, "-m", "dense_head_pose", "bag", str(recording), "--out", str(out),
             "--hri", "--models", str(PACK)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        topics = read_bag(out)
        status = [t for t in topics if t.endswith("/engagement_status")]
        assert len(status) == 1, list(topics)
        person = status[0].split("/")[3]
        faces = {i for _, m in topics["/humans/faces/tracked"] for i in m.ids}
        assert {anonymous_person_id(f) for f in faces} == {person}
        levels = [m.level for _, m in topics[status[0]]]
        assert all((a, b) in ALLOWED for a, b in itertools.pairwise(levels))
        assert 35 <= len(levels) <= 45  # 10 Hz over 4 s of stamps
        gazes = [(m.sender, m.receiver) for _, m in topics.get("/humans/interactions/gazing", [])]
        finals[name] = (levels[-1], gazes, result.stderr)
    assert finals["frontal"][0] == ENGAGED and (person_of := finals["frontal"][1][0][0])
    assert all(g == (person_of, "") for g in finals["frontal"][1])
    assert "ENGAGED" in finals["frontal"][2]  # the summary's last levels
    assert finals["turned"][0] == DISENGAGED and finals["turned"][1] == []
