"""``dense-head-pose record``: a video as a rosbag2 camera recording, without ROS."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..output_files import check_directory_writable, refuse_inputs
from . import common
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="write a video (or folder of images) as a rosbag2 "
                       "camera recording (images and camera_info), without ROS")
    p.add_argument("source", metavar="VIDEO")
    p.add_argument("out", metavar="OUT_BAG", type=Path, help="the bag directory to create")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap",
                   help="storage of the bag (default mcap)")
    p.add_argument("--jpeg", action="store_true",
                   help="CompressedImage (JPEG) on <camera>/image_raw/compressed instead of "
                        "bgr8 Image on <camera>/image_raw")
    p.add_argument("--camera", default="/camera", metavar="NAMESPACE",
                   help="topics <camera>/image_raw and <camera>/camera_info (default /camera)")
    p.add_argument("--frame-id", default="camera_optical_frame",
                   help="frame_id of the images (default camera_optical_frame)")
    p.add_argument("--intrinsics", nargs=4, type=float, metavar=("FX", "FY", "CX", "CY"),
                   help="camera_info intrinsics in pixels (default: f = width, centred)")
    p.add_argument("--repeat", type=common.count(1, 10_000), default=1, metavar="N",
                   help="the video N times in a row (default 1)")
    p.add_argument("--max-frames", type=common.count(0, 10**9), default=0,
                   help="stop after N frames (0: all)")
    p.add_argument("--start-time", type=common.number(0, 2**32 - 1), metavar="SECONDS",
                   help="stamp of the first frame, seconds since the epoch (default: now)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """A video as a rosbag2 camera recording (see :mod:`..recordings.from_video`)."""
    from ..recordings.from_video import record_video

    refuse_inputs("OUT_BAG", args.out, [args.source])
    if args.out.exists():
        raise ValueError(f"{args.out} exists: give a new directory for the bag")
    check_directory_writable("OUT_BAG", args.out.parent if str(args.out.parent) else Path("."),
                             args.out)
    progress = common.progress(args.max_frames or None)
    try:
        frames = record_video(
            args.source, args.out, storage=args.storage, jpeg=args.jpeg, camera=args.camera,
            frame_id=args.frame_id, intrinsics=common.intrinsics(args),
            start_ns=None if args.start_time is None else round(args.start_time * 1e9),
            max_frames=args.max_frames, repeat=args.repeat,
            on_frame=lambda n: progress.update(1))
    finally:
        progress.close()
    LOG.info("wrote %s: %d frame(s) on %s/image_raw%s and %s/camera_info", args.out, frames,
             args.camera, "/compressed" if args.jpeg else "", args.camera)
    return 0
