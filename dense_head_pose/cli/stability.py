"""``dense-head-pose stability``: jitter, error and lag of tracked video on synthetic clips,
and throughput on a video."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .. import images
from ..errors import VideoError
from ..evaluation.stability import CLIPS
from ..video.sources import FrameSource, open_source
from ..video.tracking import FaceTracker
from . import common
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stability", help="jitter, error and lag of raw and tracked estimates "
                       "on synthetic clips made from still images; throughput on a video")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--video", metavar="PATH", help="also measure frames/s on this video")
    p.add_argument("--still-frames", type=common.count(10, 10_000), default=90,
                   help="frames of the still clip (default 90)")
    p.add_argument("--moving-frames", type=common.count(20, 10_000), default=120,
                   help="frames of the moving clip (default 120)")
    p.add_argument("--face-sizes", type=common.count(16, 4000), nargs="+", default=[],
                   metavar="PX", help="also each image scaled so its largest face is PX "
                   "pixels wide (e.g. 60 100 200)")
    p.add_argument("--clips", nargs="+", choices=CLIPS, default=list(CLIPS),
                   help="which clips (default all): still; roll, in the image plane; "
                   "yaw and pitch, the head turning out of the plane")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    common.add_pipeline_args(p)
    common.add_tracking_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Raw vs tracked+smoothed on synthetic clips (and a video's frames/s)."""
    from ..evaluation import stability

    estimator = common.estimator(args)
    options = common.tracker_options(args)
    named = [(Path(p).name, images.read(p)) for p in args.images]
    report = stability.evaluate(estimator, lambda: FaceTracker(estimator, options), named,
                                args.still_frames, args.moving_frames, args.face_sizes,
                                args.clips, on_clip=lambda image, clip: LOG.info(
                                    "%s: the %s clip measured", image, clip))
    if args.video:
        with open_source(args.video) as source:
            runs, count = stability.throughput(_replay(source), {
                "raw": lambda: lambda f, t: estimator(f),
                "tracked": lambda: FaceTracker(estimator, options)})
        report["throughput"] = {"video": Path(args.video).name, "frames": count,
                                "runs": runs}
    if args.json:
        common.print_json(common.json_safe(report))
    else:
        from ..evaluation.stability_report import report_tables

        print(report_tables(report))
    return 0


def _replay(source: FrameSource) -> Callable[[], Iterator[np.ndarray]]:
    """A function that streams ``source`` from its start on every call."""
    def frames() -> Iterator[np.ndarray]:
        if not source.rewind():
            raise VideoError(f"{source.description} cannot be read twice")
        for _, frame in source:
            yield frame
    return frames
