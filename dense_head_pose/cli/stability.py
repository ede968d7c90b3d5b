"""``dense-head-pose stability``: jitter, error and lag of tracked video on synthetic clips
made from given images or from many AFLW2000-3D faces, and throughput on a video."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .. import images
from ..errors import VideoError
from ..evaluation.stability import CLIPS
from ..evaluation.stability_set import HALVES, SET_CLIPS, SIZES
from ..video.look_ahead import DEFAULT_FRAMES
from ..video.sources import FrameSource, open_source
from ..video.tracking import FaceTracker
from . import common
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stability", help="jitter, error and lag of raw and tracked estimates "
                       "on synthetic clips made from still images or from many AFLW2000-3D "
                       "faces; throughput on a video")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--aflw2000", metavar="DIR", help="instead of IMAGEs: clips of many "
                   "labelled faces of this AFLW2000-3D directory, summarised as median and "
                   "90th percentile per face size and yaw band")
    p.add_argument("--half", choices=HALVES, default="report",
                   help="with --aflw2000: the faces of even (tune) or odd (report) index "
                   "(default report)")
    p.add_argument("--faces", type=common.count(1, 1000), default=30,
                   help="with --aflw2000: how many faces, a third per yaw band (default 30)")
    p.add_argument("--video", metavar="PATH", help="also measure frames/s on this video")
    p.add_argument("--still-frames", type=common.count(10, 10_000), default=90,
                   help="frames of the still clip (default 90)")
    p.add_argument("--moving-frames", type=common.count(20, 10_000), default=None,
                   help="frames of each moving clip (default 120; 90 with --aflw2000)")
    p.add_argument("--face-sizes", type=common.count(16, 4000), nargs="+", default=None,
                   metavar="PX", help="also each image scaled so its largest face is PX "
                   "pixels wide (e.g. 60 100 200); with --aflw2000, the labelled face's "
                   f"sizes on a 1280x720 canvas (default {' '.join(map(str, SIZES))})")
    p.add_argument("--clips", nargs="+", choices=SET_CLIPS, default=None,
                   help="which clips (default all): still; roll, in the image plane; "
                   "yaw and pitch, the head turning out of the plane; cross, the head "
                   "crossing the frame (--aflw2000 only)")
    p.add_argument("--look-ahead", type=common.count(1, 10_000), default=DEFAULT_FRAMES,
                   metavar="FRAMES", help="with --aflw2000: the offline smoother's window "
                   f"(default {DEFAULT_FRAMES})")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    common.add_pipeline_args(p)
    common.add_tracking_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Raw vs tracked+smoothed on synthetic clips (and a video's frames/s)."""
    if bool(args.images) == bool(args.aflw2000):
        raise ValueError("give either IMAGEs or --aflw2000 DIR")
    if args.aflw2000:
        return _run_set(args)
    from ..evaluation import stability

    if "cross" in (args.clips or ()):
        raise ValueError("--clips cross needs --aflw2000")
    estimator = common.estimator(args)
    options = common.tracker_options(args)
    named = [(Path(p).name, images.read(p)) for p in args.images]
    report = stability.evaluate(estimator, lambda: FaceTracker(estimator, options), named,
                                args.still_frames, args.moving_frames or 120,
                                args.face_sizes or [], args.clips or CLIPS,
                                on_clip=lambda image, clip: LOG.info(
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


def _run_set(args: argparse.Namespace) -> int:
    """``--aflw2000``: the distribution of faces (:mod:`..evaluation.stability_set`)."""
    from ..evaluation.aflw2000_labels import load_aflw2000
    from ..evaluation.stability import Live
    from ..evaluation.stability_set import SetOptions, evaluate_set, set_tables, summarise_set
    from ..video.look_ahead import LookAheadTracker

    if args.video:
        raise ValueError("--video goes with IMAGEs, not --aflw2000")
    options = SetOptions(args.half, args.faces, tuple(args.face_sizes or SIZES),
                         tuple(args.clips or SET_CLIPS), args.still_frames,
                         args.moving_frames or 90)
    estimator = common.estimator(args)
    tracking = common.tracker_options(args)
    followers = {"tracked": lambda: Live(FaceTracker(estimator, tracking)),
                 "unsmoothed": lambda: Live(FaceTracker(estimator, tracking, smooth=False)),
                 "look_ahead": lambda: LookAheadTracker(FaceTracker(estimator, tracking),
                                                        args.look_ahead)}
    samples = load_aflw2000(args.aflw2000)
    report = evaluate_set(estimator, followers, samples, options, on_face=lambda name, size:
                          LOG.info("%s at %d px: every clip measured", name, size))
    summary = summarise_set(report)
    if args.json:
        common.print_json(common.json_safe({**report, "summary": summary}))
    else:
        print(set_tables(report, summary))
    return 0
