"""``dense-head-pose video``: a video, folder of images or camera, tracked and smoothed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..output_files import input_stem, make_directory, refuse_inputs
from ..video.look_ahead import DEFAULT_FRAMES
from . import common, recordings_run
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video", help="estimate faces in a video file or camera")
    p.add_argument("sources", nargs="+", metavar="PATH|CAMERA_INDEX",
                   help="a video file, a folder of images or a camera index; or many videos: "
                        "files, directories searched for videos, @LIST (a file of paths, one "
                        "a line)")
    p.add_argument("--max-frames", type=common.count(0, 10**9), default=0,
                   help="stop after N frames (0: all)")
    common.add_pipeline_args(p)
    common.add_output_args(p)
    common.add_tracking_args(p, look_ahead=f"default {DEFAULT_FRAMES} for files, 0 for a "
                             "camera")
    recordings_run.add_dataset_args(p)
    p.set_defaults(run=run)


def output_path(out: str, source: str, mode: str) -> Path:
    """Where ``video --out`` writes: the file ``out``, or ``<source>_<mode>.mp4`` in the
    directory ``out`` (ending with ``/`` or existing as one); OutputPathError if that is
    the input or lies inside an input folder."""
    target = Path(out)
    if out.endswith(("/", os.sep)) or target.is_dir():
        stem = f"camera{source}" if source.isdigit() else input_stem(source, ())
        target = make_directory("--out", target) / f"{Path(stem).stem}_{mode}.mp4"
    refuse_inputs("--out", target, [source])
    return target


def run(args: argparse.Namespace) -> int:
    """Estimate every frame, optionally write a drawn video and JSON lines; many videos:
    a drawn video each and one table."""
    from ..dataset.work import Settings

    sources = args.sources
    if len(sources) > 1 or sources[0].startswith("@") or (
            Path(sources[0]).is_dir() and not _image_folder(sources[0])):
        from ..dataset.inputs import expand_inputs

        sources = expand_inputs(sources, "video")
        recordings_run.refuse_outputs_in_searched(args, args.sources, "video",
                                                  ("--out", args.out))
    several = len(sources) > 1
    if args.json and (several or args.ray or args.summary or args.resume):
        raise ValueError("--json with several videos or a dataset option: the face rows go "
                         "to --summary FILE")
    if any(s.isdigit() for s in sources) and (several or args.ray or args.resume):
        raise ValueError("a camera index cannot be part of a dataset: give files")
    out = Path(args.out) if args.out else None
    if out is not None and not several:
        out = output_path(args.out, sources[0], args.mode)
    if several and not (out or args.summary):
        LOG.warning("nothing will be written (give --out DIR or --summary FILE)")
    if args.look_ahead is None:  # a camera is live: its frames are not known ahead
        args.look_ahead = 0 if sources[0].isdigit() else DEFAULT_FRAMES
    settings = Settings("video", common.tracker_options(args), mode=args.mode,
                        intrinsics=common.intrinsics(args), max_frames=args.max_frames)
    said = common.IntrinsicsNote(args)
    emit = (lambda frame, result: common.emit(result, frame.index, said)) if args.json else None
    return recordings_run.run(args, sources, settings, out, None, None, emit)


def _image_folder(path: str) -> bool:
    """A folder of images is one input (a video as frames), not a folder of videos."""
    from ..dataset.inputs import VIDEO_SUFFIXES

    entries = [p for p in Path(path).iterdir() if p.is_file()]
    return not any(p.suffix.lower() in VIDEO_SUFFIXES for p in entries) and bool(entries)
