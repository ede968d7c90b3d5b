"""``dense-head-pose bag``: recordings in; the node's outputs, a CSV and a plot out."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import common, recordings_run
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bag", help="process rosbag2 recordings offline: the node's outputs "
                       "as a bag, a CSV time series, a plot")
    p.add_argument("inputs", nargs="+", metavar="BAG",
                   help="rosbag2 directories (MCAP or sqlite3; a recording cut off is read up "
                        "to the cut), .mcap/.db3 files, ROS 1 .bag files; directories holding "
                        "them (searched); @LIST: a file of such paths, one a line")
    p.add_argument("--out", metavar="PATH", type=Path,
                   help="write the node's outputs as a new bag (with several inputs: a "
                        "directory of bags named after them)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap",
                   help="storage of the output bag (default mcap)")
    p.add_argument("--csv", metavar="PATH", type=Path,
                   help="per-face time series: stamp, camera, id, yaw, pitch, roll (degrees), "
                        "translation (m), quaternion, score")
    p.add_argument("--plot", metavar="PNG", type=Path,
                   help="yaw, pitch and roll against time, a line per face id")
    p.add_argument("--image-topic", action="append", default=[], metavar="TOPIC",
                   help="camera topic (Image or CompressedImage); repeat for several "
                        "(default: every image topic of the bag)")
    p.add_argument("--camera-info-topic", metavar="TOPIC",
                   help="its CameraInfo (default: camera_info beside the image topic)")
    p.add_argument("--hri", action=argparse.BooleanOptionalAction, default=None,
                   help="ROS4HRI topics in the output bag (default: when hri_msgs' "
                        "definitions are installed)")
    p.add_argument("--deterministic-ids", action="store_true",
                   help="face ids f00001, f00002, ... (default: 5 random letters, as live)")
    p.add_argument("--face-id-prefix", default="", metavar="PREFIX",
                   help="prefix of the face ids (one camera; with several, NAME_)")
    p.add_argument("--jobs", type=common.count(1, 256), default=1, metavar="N",
                   help="bags processed at once, a process each (default 1)")
    p.add_argument("--json", action="store_true", help="print each bag's summary as JSON")
    common.add_pipeline_args(p)
    common.add_tracking_args(p, look_ahead="default 0: what the live node would have "
                             "published")
    recordings_run.add_dataset_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Process every input; 2 if any failed (each is reported, the others processed)."""
    from ..dataset.inputs import expand_inputs
    from ..dataset.work import Settings
    from ..recordings.summary import BagOptions

    options = BagOptions(
        image_topics=tuple(args.image_topic), camera_info_topic=args.camera_info_topic,
        storage=args.storage, hri=args.hri, deterministic_ids=args.deterministic_ids,
        face_id_prefix=args.face_id_prefix, default_intrinsics=common.intrinsics(args))
    # the options are checked first: a bad option is named before any input is searched
    inputs = expand_inputs(args.inputs, "bag")
    recordings_run.refuse_outputs_in_searched(args, args.inputs, "bag", ("--out", args.out),
                                              ("--csv", args.csv), ("--plot", args.plot))
    if not (args.out or args.csv or args.plot or args.summary):
        LOG.warning("nothing will be written (give --out, --csv, --plot or --summary): "
                    "summary only")
    if args.plot:
        from ..recordings.plot import pyplot

        pyplot()  # before hours of work, not after
    settings = Settings("bag", common.tracker_options(args), options)
    return recordings_run.run(args, inputs, settings, args.out, args.csv, args.plot)
