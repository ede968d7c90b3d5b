"""``dense-head-pose engagement``: every person's engagement over recordings of a ROS4HRI
face pipeline's TF and ids, replayed through the node's own engagement code."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..attention.engagement import DEFINITIONS, EngagementOptions
from ..errors import DenseHeadPoseError
from ..recordings.engagement_replay import PersonLevels, replay_engagement
from . import common
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engagement", help="replay recordings' /tf and person and face ids "
                       "through hri_engagement's definition (or this package's default): "
                       "each person's engagement levels over time")
    p.add_argument("recordings", nargs="+", metavar="RECORDING", help="rosbag2 recordings")
    defaults = EngagementOptions()
    p.add_argument("--reference-frame", default="", metavar="FRAME",
                   help="the robot's frame (x forward, z up; a name with 'optical' in it: z "
                   "forward); default camera_link when recorded, else the faces' camera "
                   "frame, taken as optical")
    p.add_argument("--definition", choices=tuple(DEFINITIONS), default=defaults.definition,
                   help="default: thresholds that need a majority of mutual gaze; "
                   "reference: hri_engagement's as it is (default %(default)s)")
    p.add_argument("--max-distance", type=common.number(0.01, 1000.0),
                   default=defaults.max_distance, help="metres (default %(default)s)")
    p.add_argument("--field-of-view", type=common.number(0.1, 89.0),
                   default=defaults.field_of_view,
                   help="half-field of attention in degrees (default %(default)s)")
    p.add_argument("--engagement-threshold", type=common.number(0.0, 1.0),
                   default=defaults.engagement_threshold,
                   help="mutual-gaze score that counts as looking (default %(default)s)")
    p.add_argument("--observation-window", type=common.number(0.1, 3600.0),
                   default=defaults.observation_window, help="seconds (default %(default)s)")
    p.add_argument("--rate", type=common.number(0.1, 1000.0), default=defaults.rate,
                   help="samples per second (default %(default)s)")
    p.add_argument("--json", action="store_true", help="one JSON object per recording and "
                   "person: recording, person, face, levels [[stamp_s, LEVEL], ...], final")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Replay each recording; a recording that cannot be read is reported and skipped
    (exit status 2 at the end)."""
    options = EngagementOptions(
        reference_frame=args.reference_frame, max_distance=args.max_distance,
        field_of_view=args.field_of_view, engagement_threshold=args.engagement_threshold,
        observation_window=args.observation_window, rate=args.rate,
        definition=args.definition)
    failed = 0
    for recording in args.recordings:
        try:
            people = replay_engagement(Path(recording), options)
        except (DenseHeadPoseError, OSError) as exc:
            LOG.error("%s: %s", recording, exc)
            failed += 1
            continue
        if not people:
            LOG.warning("%s: nobody tracked", recording)
        for person in people:
            if args.json:
                common.print_json(person.to_json())
            else:
                print(_line(person))
    return 2 if failed else 0


def _line(person: PersonLevels) -> str:
    """One person of one recording, as text: the last level, then every change."""
    start = person.levels[0][0] if person.levels else 0.0
    changes = " ".join(f"{t - start:.1f}s:{name}" for t, name in person.levels)
    face = f" (face {person.face})" if person.face else ""
    return f"{person.recording}  {person.person}{face}  final {person.final}  {changes}"
