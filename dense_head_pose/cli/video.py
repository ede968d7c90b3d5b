"""``dense-head-pose video``: a video, folder of images or camera, tracked and smoothed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import VideoError
from ..lifetime import stop_signals_held
from ..output_files import input_stem, make_directory, refuse_inputs
from ..pipeline.drawing import drawer as make_drawer
from ..video.sources import open_source
from ..video.tracking import FaceTracker
from ..video.writer import VideoWriter
from . import common, dataset
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
    common.add_tracking_args(p)
    dataset.add_dataset_args(p)
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
    the dataset runner (a drawn video each, one table)."""
    sources = args.sources
    if len(sources) > 1 or sources[0].startswith("@") or (
            Path(sources[0]).is_dir() and not _image_folder(sources[0])):
        from ..dataset.inputs import expand_inputs

        sources = expand_inputs(sources, "video")
        dataset.refuse_outputs_in_searched(args, args.sources, "video", ("--out", args.out))
    if dataset.wanted(args, sources):
        return _dataset(args, sources)
    args.source = sources[0]
    intrinsics = common.intrinsics(args)
    out = output_path(args.out, args.source, args.mode) if args.out else None
    with open_source(args.source) as source:
        tracker = FaceTracker(common.estimator(args), common.tracker_options(args))
        drawer = make_drawer(args.mode) if out else None
        writer = VideoWriter(out, source.fps) if out else None
        # a folder's count is exact; a video container's often is not (the test video claims
        # 158 frames and has 55): no total rather than a wrong one
        total = source.frame_count if source.exact_count else None
        if args.max_frames:
            total = min(total or args.max_frames, args.max_frames)
        progress = common.progress(total)
        frames = 0
        try:
            for index, seconds, frame in source.timed():
                if args.max_frames and index >= args.max_frames:
                    break
                result = tracker(frame, seconds, intrinsics,
                                 dense=args.mode in ("dense", "mesh"))
                with stop_signals_held():  # a frame's JSON line and video frame, or neither
                    if args.json:
                        common.emit(result, index)
                    if writer is not None and drawer is not None:
                        writer.write(drawer(frame, result.faces))
                    frames += 1
                progress.update(1)
        except BaseException:
            if writer is not None:  # whatever stopped us, the frames so far stay playable
                writer.abort()
            raise
        finally:
            progress.total = progress.n
            progress.close()
        if writer is not None:
            writer.close()  # VideoError if the file is not whole (a full disk)
    if frames == 0:
        raise VideoError(f"{source.description}: no frame could be decoded")
    skipped = f", {source.skipped} undecodable file(s) skipped" if source.skipped else ""
    wrote = f", wrote {out} ({writer.codec})" if writer is not None else ""
    LOG.info("%s: %d frame(s)%s%s", source.description, frames, skipped, wrote)
    return 0


def _image_folder(path: str) -> bool:
    """A folder of images is one input (a video as frames), not a folder of videos."""
    from ..dataset.inputs import VIDEO_SUFFIXES

    entries = [p for p in Path(path).iterdir() if p.is_file()]
    return not any(p.suffix.lower() in VIDEO_SUFFIXES for p in entries) and bool(entries)


def _dataset(args: argparse.Namespace, sources: list[str]) -> int:
    from ..dataset.work import Settings

    if args.json:
        raise ValueError("--json with several videos or a dataset option: the face rows go "
                         "to --summary FILE")
    if any(s.isdigit() for s in sources):
        raise ValueError("a camera index cannot be part of a dataset: give files")
    settings = Settings("video", common.tracker_options(args), mode=args.mode,
                        intrinsics=common.intrinsics(args), max_frames=args.max_frames)
    out = Path(args.out) if args.out else None
    if out is not None and len(sources) == 1 and (args.out.endswith(("/", os.sep))
                                                   or out.is_dir()):
        out = output_path(args.out, sources[0], args.mode)
    if not (out or args.summary):
        LOG.warning("nothing will be written (give --out DIR or --summary FILE)")
    return dataset.run(args, sources, settings, out, None, None)
