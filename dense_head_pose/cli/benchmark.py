"""``dense-head-pose benchmark``: the time of every stage over a video or a repeated image."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import images
from ..errors import VideoError
from ..evaluation.benchmark import StageSamples, stage_table
from ..pipeline.drawing import drawer as make_drawer
from ..video.sources import IMAGE_SUFFIXES, open_source
from . import common


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="per-stage timing table over a video or image")
    p.add_argument("source", metavar="PATH")
    p.add_argument("--frames", type=common.count(0, 10**7), default=0,
                   help="frames to time (0: all; images: 200)")
    p.add_argument("--warmup", type=common.count(0, 10**6), default=5,
                   help="untimed frames first (default 5)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--render-mode", choices=common.MODES, default="mesh",
                   help="drawing timed as the last stage (default mesh, the native renderer)")
    common.add_pipeline_args(p)
    p.set_defaults(run=run)


def frames(path: str, count: int) -> Iterator[np.ndarray]:
    """``count`` frames of a video or folder, streamed (started again at its end), or an
    image repeated; ``count`` 0: a video's frames once, an image 200 times. Nothing is held
    in memory but the current frame."""
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        image = images.read(path)
        for _ in range(count or 200):
            yield image
        return
    with open_source(path) as source:
        produced = 0
        while True:
            before = produced
            for _, frame in source:
                yield frame
                produced += 1
                if produced == count:
                    return
            if not count or produced == before or not source.rewind():
                return


def run(args: argparse.Namespace) -> int:
    """Time every stage over the frames of a video or a repeated image."""
    estimator = common.estimator(args)
    drawer = make_drawer(args.render_mode)
    stage_name = "render" if args.render_mode == "mesh" else "draw"
    intrinsics = common.intrinsics(args)
    samples = StageSamples()
    faces = count = 0
    size = (0, 0)
    for frame in frames(args.source, args.frames):
        if count == 0:
            size = (int(frame.shape[1]), int(frame.shape[0]))
            for _ in range(args.warmup):  # untimed: first calls allocate and plan
                drawer(frame.copy(), estimator(frame, intrinsics, dense=True).faces)
        t0 = time.perf_counter()
        result = estimator(frame, intrinsics, dense=True)
        t1 = time.perf_counter()
        canvas = frame.copy()  # draw on a copy, outside the timing
        t2 = time.perf_counter()
        drawer(canvas, result.faces)
        t3 = time.perf_counter()
        samples.add({**result.timings, stage_name: (t3 - t2) * 1e3}, (t1 - t0 + t3 - t2) * 1e3)
        faces += len(result.faces)
        count += 1
    if count == 0:
        raise VideoError(f"{args.source}: no frame to time")
    elapsed = sum(samples.frame_ms) / 1e3
    summary = {"frames": count, "threads": args.threads,
               "dense_path": estimator.model.dense_path,
               "fps": round(count / elapsed, 2),
               "faces_per_frame": round(faces / count, 3),
               "frame_size": list(size),
               "stages": samples.summary()}
    if args.json:
        common.print_json(summary)
    else:
        print(f"{args.source}: {count} frames of {size[0]}x{size[1]}, "
              f"{summary['faces_per_frame']} faces/frame, {args.threads} thread(s), dense "
              f"vertices by {summary['dense_path']}, {summary['fps']} frames/s end to end")
        print(stage_table(summary["stages"]))
    return 0
