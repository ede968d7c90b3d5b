"""The ``dense-head-pose`` command: images, videos, benchmarks and the model pack.

JSON goes to stdout, one object per line; logs and progress bars go to stderr, so
``dense-head-pose video clip.mp4 --json > poses.jsonl`` gives a clean file.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from . import __version__, images, model_pack
from .benchmark import StageSamples, stage_table
from .bfm_import import import_full_bfm
from .drawing import DRAW_MODES, draw
from .errors import DenseHeadPoseError, VideoError
from .estimator import POSE_METHODS, PRECISIONS, EstimatorOptions, HeadPoseEstimator
from .evaluation import PROTOCOLS
from .one_euro import OneEuroParams
from .output_files import (
    check_directory_writable,
    check_new_file,
    input_stem,
    make_directory,
    plot_path,
    refuse_inputs,
)
from .pose import CameraIntrinsics
from .quantization import INT8_NAME
from .results import Face, FrameResult
from .tracking import QUANTITIES, FaceTracker, SmoothingOptions, TrackerOptions
from .video import IMAGE_SUFFIXES, FrameSource, open_source
from .video_writer import VideoWriter

LOG = logging.getLogger("dense_head_pose")
MODES = (*DRAW_MODES, "mesh")


def _count(low: int, high: int = 1_000_000) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high}")
        return value
    return parse


def _open_fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", metavar="DIR", help="model pack directory (default: search path)")
    p.add_argument("--threads", type=_count(1, 64), default=1,
                   help="LiteRT threads per model, and the BLAS threads used (default 1)")
    p.add_argument("--threshold", type=_open_fraction, default=0.6,
                   help="detector score threshold, 0..1 (default 0.6)")
    p.add_argument("--max-faces", type=_count(0, 1000), default=16,
                   help="largest N faces per frame (default 16)")
    defaults = EstimatorOptions()
    p.add_argument("--retry-mirrored", action=argparse.BooleanOptionalAction,
                   default=defaults.retry_mirrored,
                   help="when the detector finds no face, look again in the mirrored frame "
                        "(finds more profiles; default on)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=defaults.refine,
                   help="second alignment pass from the first pass's landmarks (default off)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=defaults.mirror,
                   help="average each fit with its mirrored crop's, one more inference per "
                        "face (default on)")
    p.add_argument("--accurate", action="store_true",
                   help="accuracy mode: five shifted crops and their mirrors averaged (ten "
                        "inferences per face)")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                   help="regressor: float32 (default) or int8 (models build --precision int8)")
    p.add_argument("--pose-method", choices=POSE_METHODS, default="affine",
                   help="metric pose from the 3DMM camera (affine) or refined by solvePnP")
    p.add_argument("--intrinsics", nargs=4, type=float, metavar=("FX", "FY", "CX", "CY"),
                   help="camera intrinsics in pixels (default: f = width, centred)")


def _add_tracking_args(p: argparse.ArgumentParser) -> None:
    defaults = TrackerOptions()
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=defaults.smooth,
                   help="One-Euro smoothing of each tracked face (default on)")
    p.add_argument("--detect-every", type=_count(1, 10_000), default=defaults.detect_every,
                   metavar="N",
                   help="run the detector every N frames, faces are tracked by their landmarks "
                        "in between (and it runs at once when one is lost); 1: every frame, "
                        f"no landmark tracking (default {defaults.detect_every})")
    shown = ", ".join(f"{q}={_params_text(getattr(defaults.smoothing, q))}" for q in QUANTITIES)
    p.add_argument("--filter", action="append", default=[], type=_filter_arg,
                   metavar="QUANTITY=MIN_CUTOFF,BETA[,D_CUTOFF[,MIN_SPEED]]",
                   help=f"One-Euro parameters of one quantity ({', '.join(QUANTITIES)}); "
                        f"repeat for several. Defaults: {shown}")


def _params_text(params: OneEuroParams) -> str:
    return ",".join(f"{v:g}" for v in (params.min_cutoff, params.beta, params.d_cutoff,
                                        params.min_speed))


def _filter_arg(text: str) -> tuple[str, OneEuroParams]:
    name, _, values = text.partition("=")
    if name not in QUANTITIES:
        raise argparse.ArgumentTypeError(f"unknown quantity {name!r}: one of "
                                         f"{', '.join(QUANTITIES)}")
    try:
        numbers = [float(v) for v in values.split(",")]
        if not 2 <= len(numbers) <= 4:
            raise ValueError("give 2 to 4 numbers")
        return name, OneEuroParams(*numbers)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def _tracker_options(args: argparse.Namespace) -> TrackerOptions:
    smoothing = replace(SmoothingOptions(), **dict(args.filter))  # others keep their defaults
    return TrackerOptions(detect_every=args.detect_every, smooth=args.smooth,
                          smoothing=smoothing)


def _add_output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mode", choices=MODES, default="pose", help="what to draw (default pose)")
    p.add_argument("--out", metavar="PATH",
                   help="write the drawing: with one input, to the file PATH (or into PATH if it "
                        "ends with / or is a directory); with several inputs, into the directory "
                        "PATH under the inputs' names. Inputs are never written over")
    p.add_argument("--json", action="store_true", help="print one JSON object per frame")


#: What argparse takes for a negative number rather than an option: its own rule misses the
#: exponent form, so ``--intrinsics 1 1 1 -1e30`` was read as an unknown option ``-1e30``.
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|nan)$", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._negative_number_matcher = _NEGATIVE_NUMBER


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dense-head-pose``."""
    parser = _Parser(
        prog="dense-head-pose",
        description="Head pose, 3D face landmarks and dense face mesh from images and video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("image", help="estimate faces in image files (JSON: 'frame' is the "
                       "file name, 'id' is null)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _add_pipeline_args(p)
    _add_output_args(p)

    p = sub.add_parser("video", help="estimate faces in a video file or camera")
    p.add_argument("source", metavar="PATH|CAMERA_INDEX")
    p.add_argument("--max-frames", type=_count(0, 10**9), default=0,
                   help="stop after N frames (0: all)")
    _add_pipeline_args(p)
    _add_output_args(p)
    _add_tracking_args(p)

    p = sub.add_parser("stability", help="jitter, error and lag of raw and tracked estimates "
                       "on synthetic clips made from still images; throughput on a video")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--video", metavar="PATH", help="also measure frames/s on this video")
    p.add_argument("--still-frames", type=_count(10, 10_000), default=90,
                   help="frames of the still clip (default 90)")
    p.add_argument("--moving-frames", type=_count(20, 10_000), default=120,
                   help="frames of the moving clip (default 120)")
    p.add_argument("--face-sizes", type=_count(16, 4000), nargs="+", default=[],
                   metavar="PX", help="also each image scaled so its largest face is PX "
                   "pixels wide (e.g. 60 100 200)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    _add_pipeline_args(p)
    _add_tracking_args(p)

    p = sub.add_parser("benchmark", help="per-stage timing table over a video or image")
    p.add_argument("source", metavar="PATH")
    p.add_argument("--frames", type=_count(0, 10**7), default=0,
                   help="frames to time (0: all; images: 200)")
    p.add_argument("--warmup", type=_count(0, 10**6), default=5,
                   help="untimed frames first (default 5)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--render-mode", choices=MODES, default="mesh",
                   help="drawing timed as the last stage (default mesh, the native renderer)")
    _add_pipeline_args(p)

    p = sub.add_parser("evaluate", help="accuracy against labelled truth (AFLW2000-3D): "
                       "NME by yaw, pose MAE, geodesic error, detector misses")
    esub = p.add_subparsers(dest="dataset", required=True, parser_class=_Parser)
    e = esub.add_parser("aflw2000", help="AFLW2000-3D: imageNNNNN.jpg + .mat (3DDFA's "
                        "benchmark files used when beside it)")
    e.add_argument("directory", metavar="DIR")
    e.add_argument("--benchmark-files", metavar="DIR",
                   help="3DDFA's AFLW2000-3D_3ddfa folder (default: beside DIR, if there)")
    e.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both",
                   help="benchmark: the benchmark's crop boxes; detector: the whole "
                        "pipeline, detector included (default both)")
    e.add_argument("--stride", type=_count(1, 10_000), default=1, metavar="N",
                   help="every N-th image only (default 1: all)")
    e.add_argument("--rotation", choices=("camera", "pose"), default="camera",
                   help="camera: the regressor's affine camera, the labels' own frame (as "
                        "3DDFA_V2 reports); pose: the metric pose (Face.pose, with "
                        "--pose-method), detector protocol only")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.add_argument("--plot", metavar="PNG", help="write error against |yaw| as a PNG")
    _add_pipeline_args(e)

    p = sub.add_parser("bag", help="process rosbag2 recordings offline: the node's outputs "
                       "as a bag, a CSV time series, a plot")
    p.add_argument("inputs", nargs="+", metavar="BAG",
                   help="rosbag2 directories (MCAP or sqlite3; a recording cut off is read up "
                        "to the cut), .mcap/.db3 files, ROS 1 .bag files")
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
    p.add_argument("--jobs", type=_count(1, 256), default=1, metavar="N",
                   help="bags processed at once, a process each (default 1)")
    p.add_argument("--json", action="store_true", help="print each bag's summary as JSON")
    _add_pipeline_args(p)
    _add_tracking_args(p)
    p.set_defaults(max_faces=8)  # the node's defaults: the bag gives what live would

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
    p.add_argument("--repeat", type=_count(1, 10_000), default=1, metavar="N",
                   help="the video N times in a row (default 1)")
    p.add_argument("--max-frames", type=_count(0, 10**9), default=0,
                   help="stop after N frames (0: all)")
    p.add_argument("--start-time", type=float, metavar="SECONDS",
                   help="stamp of the first frame, seconds since the epoch (default: now)")

    p = sub.add_parser("models", help="fetch, check or extend the model pack")
    msub = p.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    f = msub.add_parser("fetch", help="copy or download the pack, verifying SHA-256")
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="from_dir", metavar="DIR", help="a directory holding the pack")
    src.add_argument("--url", metavar="BASE_URL", help="base URL the files are under")
    f.add_argument("--dest", metavar="DIR", help="target directory (default: "
                   f"${model_pack.ENV_VAR} if set, else the source checkout's models/ when "
                   "writable, else ~/.local/share/dense_head_pose/models)")
    f.add_argument("--timeout", type=float, default=model_pack.DOWNLOAD_TIMEOUT_S,
                   metavar="S", help="give up on a server silent for S seconds (default 60)")
    b = msub.add_parser("build", help="make the pack from its upstream public files "
                        "(downloaded from their pinned commits, or --from DIR), verified")
    src = b.add_mutually_exclusive_group()
    src.add_argument("--from", dest="from_dir", metavar="DIR",
                     help="a directory holding the upstream files (models/upstream.json)")
    src.add_argument("--url", metavar="BASE_URL", help="a mirror holding them by name "
                     "(default: each file's pinned raw.githubusercontent.com URL)")
    b.add_argument("--dest", metavar="DIR", help="target directory (default as for fetch)")
    b.add_argument("--precision", choices=("float32", "int8"), default="float32",
                   help="int8: also the post-training-quantised regressor "
                        f"({INT8_NAME}; needs pip install 'dense_head_pose[quantize]' and "
                        "--calibration)")
    b.add_argument("--calibration", nargs="+", default=[], metavar="PATH",
                   help="videos, images or folders whose faces calibrate the int8 model (the "
                        "kind of images it will see; never a benchmark)")
    b.add_argument("--keep-upstream", metavar="DIR",
                   help="keep the verified upstream files there (default: discarded)")
    b.add_argument("--timeout", type=float, default=model_pack.DOWNLOAD_TIMEOUT_S,
                   metavar="S", help="give up on a server silent for S seconds (default 60)")
    c = msub.add_parser("check", help="verify an installed pack")
    c.add_argument("--models", metavar="DIR", help="pack directory (default: search path)")
    i = msub.add_parser("import-bfm", help="convert 3DDFA_V2's bfm_noneck_v3.pkl to .npz")
    i.add_argument("pkl", metavar="FILE.pkl")
    i.add_argument("--models", metavar="DIR", help="pack directory to add it to")
    return parser


def _estimator_options(args: argparse.Namespace) -> EstimatorOptions:
    """The pipeline options of :func:`_add_pipeline_args`."""
    return EstimatorOptions(num_threads=args.threads, score_threshold=args.threshold,
                            max_faces=args.max_faces, retry_mirrored=args.retry_mirrored,
                            refine=args.refine, mirror=args.mirror, accurate=args.accurate,
                            precision=args.precision, pose_method=args.pose_method)


def _estimator(args: argparse.Namespace) -> HeadPoseEstimator:
    return HeadPoseEstimator.from_model_dir(args.models, _estimator_options(args))


def _intrinsics(args: argparse.Namespace) -> CameraIntrinsics | None:
    """``--intrinsics``, validated before any frame is read (ValueError: exit 2)."""
    return CameraIntrinsics(*args.intrinsics) if args.intrinsics else None


def _drawer(mode: str) -> Callable[[np.ndarray, list[Face]], np.ndarray]:
    """A function drawing faces onto a frame, in place, in ``mode``."""
    if mode == "mesh":
        from .render import MeshRenderer

        return MeshRenderer().render_faces
    return lambda frame, faces: draw(frame, faces, mode)


class OutputError(DenseHeadPoseError):
    """Standard output cannot be written (full disk, closed): exit 2, one line."""


def _emit(result: FrameResult, frame: int | str) -> None:
    _print_json(result.to_dict(frame))


def _print_json(obj: object) -> None:
    """One JSON line on stdout; :class:`OutputError` if stdout cannot take it (a broken
    pipe, e.g. ``| head``, stays a BrokenPipeError: the reader is done, not an error)."""
    if sys.stdout is None:
        raise OutputError("standard output is closed: cannot print JSON")
    try:
        sys.stdout.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


def cmd_image(args: argparse.Namespace) -> int:
    """``image``: estimate, optionally draw and print, for each path."""
    outputs = output_paths(args.out, args.paths) if args.out else {}
    intrinsics = _intrinsics(args)
    estimator = _estimator(args)
    drawer = _drawer(args.mode) if args.out else None
    failures = 0
    for path in args.paths:
        try:
            frame = images.read(path)
        except DenseHeadPoseError as exc:
            LOG.error("%s", exc)
            failures += 1
            continue
        result = estimator(frame, intrinsics, dense=args.mode in ("dense", "mesh"))
        LOG.info("%s: %d face(s)", path, len(result.faces))
        if args.json:
            _emit(result, Path(path).name)
        if drawer is not None:
            failures += not _write_image(outputs[path], drawer(frame, result.faces))
    return 1 if failures else 0


def output_paths(out: str, inputs: Sequence[str]) -> dict[str, Path]:
    """Where each input's drawing goes (see ``--out``); raises ValueError, before anything
    is processed, for a rule broken: several inputs into a file, an output that would write
    over an input, two inputs onto one output, a file type OpenCV cannot write."""
    target = Path(out)
    into_dir = len(inputs) > 1 or out.endswith(("/", os.sep)) or target.is_dir()
    if len(inputs) > 1 and target.suffix.lower() in IMAGE_SUFFIXES and not target.is_dir():
        raise ValueError(f"--out {out}: several inputs are drawn into a directory, and "
                         f"{out} names a file; give a directory (e.g. {target.stem}/)")
    result: dict[str, Path] = {}
    for path in inputs:
        if into_dir:
            name = Path(path).name
            if not cv2.haveImageWriter(name):  # no or an unknown extension: write PNG
                name += ".png"
            result[path] = target / name
        else:
            if not cv2.haveImageWriter(str(target)):
                raise ValueError(f"--out {out}: cannot write that file type; use .jpg, .png, "
                                 "... or a directory")
            result[path] = target
    seen: dict[Path, str] = {}
    for path, dest in result.items():
        refuse_inputs("--out", dest, inputs)
        if dest in seen:
            raise ValueError(f"--out {out}: {seen[dest]} and {path} would both be drawn to "
                             f"{dest}")
        seen[dest] = path
    if into_dir:
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"--out {out}: cannot create the directory "
                             f"({exc.strerror or exc})") from exc
    return result


def _write_image(dest: Path, image: np.ndarray) -> bool:
    """Write one drawing; a failure is logged and the batch goes on."""
    try:
        if cv2.imwrite(str(dest), image):
            return True
        LOG.error("cannot write %s", dest)
    except cv2.error as exc:
        LOG.error("cannot write %s: %s", dest, exc.err)
    return False


def video_output_path(out: str, source: str, mode: str) -> Path:
    """Where ``video --out`` writes: the file ``out``, or ``<source>_<mode>.mp4`` in the
    directory ``out`` (ending with ``/`` or existing as one); OutputPathError if that is
    the input or lies inside an input folder."""
    target = Path(out)
    if out.endswith(("/", os.sep)) or target.is_dir():
        stem = f"camera{source}" if source.isdigit() else input_stem(source, ())
        target = make_directory("--out", target) / f"{Path(stem).stem}_{mode}.mp4"
    refuse_inputs("--out", target, [source])
    return target


def cmd_video(args: argparse.Namespace) -> int:
    """``video``: estimate every frame, optionally write a drawn video and JSON lines."""
    intrinsics = _intrinsics(args)
    out = video_output_path(args.out, args.source, args.mode) if args.out else None
    with open_source(args.source) as source:
        tracker = FaceTracker(_estimator(args), _tracker_options(args))
        drawer = _drawer(args.mode) if out else None
        writer = VideoWriter(out, source.fps) if out else None
        # a folder's count is exact; a video container's often is not (the test video claims
        # 158 frames and has 55): no total rather than a wrong one
        total = source.frame_count if source.exact_count else None
        if args.max_frames:
            total = min(total or args.max_frames, args.max_frames)
        progress = _progress(total)
        frames = 0
        try:
            for index, seconds, frame in source.timed():
                if args.max_frames and index >= args.max_frames:
                    break
                result = tracker(frame, seconds, intrinsics,
                                 dense=args.mode in ("dense", "mesh"))
                if args.json:
                    _emit(result, index)
                if writer is not None and drawer is not None:
                    writer.write(drawer(frame, result.faces))
                progress.update(1)
                frames += 1
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


def _progress(total: int | None):
    """A progress bar on stderr when it is a terminal (JSON on stdout is unaffected)."""
    from tqdm import tqdm

    # disable=None: only on a terminal; no stderr at all (2>&-): none
    return tqdm(total=total, unit="frame", disable=None if sys.stderr is not None else True,
                file=sys.stderr, dynamic_ncols=True)


def _frames(path: str, count: int) -> Iterator[np.ndarray]:
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


def cmd_benchmark(args: argparse.Namespace) -> int:
    """``benchmark``: time every stage over the frames of a video or a repeated image."""
    estimator = _estimator(args)
    drawer = _drawer(args.render_mode)
    stage_name = "render" if args.render_mode == "mesh" else "draw"
    intrinsics = _intrinsics(args)
    samples = StageSamples()
    faces = frames = 0
    size = (0, 0)
    for frame in _frames(args.source, args.frames):
        if frames == 0:
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
        frames += 1
    if frames == 0:
        raise VideoError(f"{args.source}: no frame to time")
    elapsed = sum(samples.frame_ms) / 1e3
    summary = {"frames": frames, "threads": args.threads,
               "dense_path": estimator.model.dense_path,
               "fps": round(frames / elapsed, 2),
               "faces_per_frame": round(faces / frames, 3),
               "frame_size": list(size),
               "stages": samples.summary()}
    if args.json:
        _print_json(summary)
    else:
        print(f"{args.source}: {frames} frames of {size[0]}x{size[1]}, "
              f"{summary['faces_per_frame']} faces/frame, {args.threads} thread(s), dense "
              f"vertices by {summary['dense_path']}, {summary['fps']} frames/s end to end")
        print(stage_table(summary["stages"]))
    return 0


def cmd_stability(args: argparse.Namespace) -> int:
    """``stability``: raw vs tracked+smoothed on synthetic clips (and a video's frames/s)."""
    from . import stability

    estimator = _estimator(args)
    options = _tracker_options(args)
    named = [(Path(p).name, images.read(p)) for p in args.images]
    report = stability.evaluate(estimator, lambda: FaceTracker(estimator, options), named,
                                args.still_frames, args.moving_frames, args.face_sizes)
    if args.video:
        with open_source(args.video) as source:
            runs, count = stability.throughput(_replay(source), {
                "raw": lambda: lambda f, t: estimator(f),
                "tracked": lambda: FaceTracker(estimator, options)})
        report["throughput"] = {"video": Path(args.video).name, "frames": count,
                                "runs": runs}
    if args.json:
        _print_json(_json_safe(report))
    else:
        print(stability.report_tables(report))
    return 0


def _replay(source: FrameSource) -> Callable[[], Iterator[np.ndarray]]:
    """A function that streams ``source`` from its start on every call."""
    def frames() -> Iterator[np.ndarray]:
        if not source.rewind():
            raise VideoError(f"{source.description} cannot be read twice")
        for _, frame in source:
            yield frame
    return frames


def _json_safe(value: object) -> object:
    """``value`` with numpy numbers as floats and NaN/inf as null (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate aflw2000``: the standard accuracy table of the estimator's settings."""
    from . import evaluation

    plot = None
    if args.plot:  # checked before the work, not after it
        plot = plot_path(args.plot)
        refuse_inputs("--plot", plot, [p for p in (args.directory, args.benchmark_files) if p])
        check_new_file("--plot", plot, overwrite=True)
        evaluation.require_matplotlib()
    samples = evaluation.load_aflw2000(args.directory, args.benchmark_files, args.stride)
    estimator = _estimator(args)
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    progress = _progress(len(samples))
    try:
        runs = evaluation.evaluate(estimator, samples, protocols, progress.update,
                                   args.rotation)
    finally:
        progress.close()
    summaries = [evaluation.summarise(run) for run in runs]
    if args.json:
        _print_json(_json_safe(evaluation.to_json(summaries, estimator.options)))
    else:
        print(f"AFLW2000-3D, {len(samples)} images ({args.directory}); NME in %, angles in "
              "degrees", flush=True)
        print(evaluation.table(summaries), flush=True)
    if plot is not None:  # after the figures: a plot that fails loses nothing else
        evaluation.plot(runs, plot)
        LOG.info("wrote %s", plot)
    return 0


def cmd_bag(args: argparse.Namespace) -> int:
    """``bag``: recordings in, the node's outputs, a CSV and a plot out (see :mod:`.bag`)."""
    from .bag import BagOptions, BagSummary, process_bags

    options = BagOptions(
        image_topics=tuple(args.image_topic), camera_info_topic=args.camera_info_topic,
        out=args.out, storage=args.storage, csv=args.csv, plot=args.plot, hri=args.hri,
        deterministic_ids=args.deterministic_ids, face_id_prefix=args.face_id_prefix,
        default_intrinsics=_intrinsics(args))
    if not (args.out or args.csv or args.plot):
        LOG.warning("nothing will be written (give --out, --csv or --plot): summary only")
    estimator_options = _estimator_options(args)
    start = time.perf_counter()
    done: list[BagSummary] = []
    failed = 0
    for result in process_bags(args.inputs, estimator_options, args.models,
                               _tracker_options(args), options, jobs=args.jobs,
                               progress_factory=_progress):
        if result.failed:
            failed += 1
        if isinstance(result, BagSummary):
            done.append(result)
        for i, line in enumerate(result.lines()):
            LOG.log(logging.ERROR if result.failed and i == 0 else logging.INFO, "%s", line)
        if args.json:
            _print_json(_json_safe(result.record()))
    wall = time.perf_counter() - start
    if len(args.inputs) > 1:
        recorded = sum(s.recorded_s for s in done)
        LOG.info("%d of %d bag(s) processed%s: %.1f s of recording in %.1f s (%.1fx real "
                 "time, %d job(s))", len(args.inputs) - failed, len(args.inputs),
                 f", {failed} failed" if failed else "", recorded, wall,
                 recorded / wall if wall else float("nan"), args.jobs)
    return 2 if failed else 0


def cmd_record(args: argparse.Namespace) -> int:
    """``record``: a video as a rosbag2 camera recording (see :mod:`.recording`)."""
    from .recording import record_video

    refuse_inputs("OUT_BAG", args.out, [args.source])
    if args.out.exists():
        raise ValueError(f"{args.out} exists: give a new directory for the bag")
    check_directory_writable("OUT_BAG", args.out.parent if str(args.out.parent) else Path("."),
                             args.out)
    if args.start_time is not None and not 0 <= args.start_time < 2**32:
        raise ValueError(f"--start-time {args.start_time}: seconds since the epoch, >= 0")
    progress = _progress(args.max_frames or None)
    try:
        frames = record_video(
            args.source, args.out, storage=args.storage, jpeg=args.jpeg, camera=args.camera,
            frame_id=args.frame_id, intrinsics=_intrinsics(args),
            start_ns=None if args.start_time is None else round(args.start_time * 1e9),
            max_frames=args.max_frames, repeat=args.repeat,
            on_frame=lambda n: progress.update(1))
    finally:
        progress.close()
    LOG.info("wrote %s: %d frame(s) on %s/image_raw%s and %s/camera_info", args.out, frames,
             args.camera, "/compressed" if args.jpeg else "", args.camera)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """``models fetch|check|import-bfm``."""
    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if args.models_command in ("fetch", "build") and not 0 < args.timeout <= 3600:
        raise ValueError(f"--timeout {args.timeout}: give 0 < S <= 3600 seconds")
    if args.models_command == "fetch":
        dest = Path(args.dest) if args.dest else model_pack.default_fetch_dest()
        model_pack.fetch(dest, Path(args.from_dir) if args.from_dir else None, args.url,
                         log=log, timeout=args.timeout)
        print(f"model pack ready in {dest} ({model_pack.describe(dest)})", file=sys.stderr)
        return 0
    if args.models_command == "build":
        from . import model_build

        dest = Path(args.dest) if args.dest else model_pack.default_fetch_dest()
        keep = Path(args.keep_upstream) if args.keep_upstream else None
        if args.precision == "int8" and not args.calibration:
            raise ValueError("--precision int8 needs --calibration PATH... (videos, images or "
                             "folders with faces)")
        model_build.build(dest, Path(args.from_dir) if args.from_dir else None, args.url,
                          log=log, timeout=args.timeout, keep_upstream=keep,
                          calibration=args.calibration if args.precision == "int8" else None)
        print(f"model pack built in {dest} ({model_pack.describe(dest)})", file=sys.stderr)
        return 0
    if args.models_command == "check":
        directory = model_pack.locate(args.models)
        problems = model_pack.verify(directory)
        for name, problem in problems.items():
            print(f"{'ok' if problem is None else 'BAD':4} {directory / name}"
                  f"{'' if problem is None else ': ' + problem}", file=sys.stderr)
        bad = [name for name, problem in problems.items() if problem]
        if bad:
            raise model_pack.ModelError(
                f"model pack in {directory} ({model_pack.describe(directory)}): "
                f"{', '.join(bad)} bad; "
                + "; ".join(model_pack.LOCAL_FILES.get(n, model_pack.FETCH_HINT) for n in bad))
        print(f"model pack in {directory} ({model_pack.describe(directory)}) is complete",
              file=sys.stderr)
        return 0
    directory = model_pack.locate(args.models)
    print(f"importing {args.pkl}: pickles can run code when loaded, so this reads only numpy "
          "arrays (anything else is refused) and you are trusting the file's contents as a "
          "Basel Face Model.", file=sys.stderr)
    out = import_full_bfm(Path(args.pkl), directory, directory / "bfm_dense_mean.npz")
    print(f"wrote {out}; dense reconstruction now uses its exact bases", file=sys.stderr)
    return 0


class Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised where the program is so that ``finally`` blocks run (a
    video being written is finished) and the exit status says which signal it was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _handle_stop_signals() -> None:
    """SIGTERM (``timeout``, systemd, ``docker stop``) and SIGHUP (a closed terminal) stop
    the program as Ctrl-C does; a signal ignored by our parent (``nohup``) stays ignored."""
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_interrupted)


def _reopen_closed_std_streams() -> None:
    """With stdin, stdout or stderr closed (``2>&-``), the next file opened takes that
    descriptor, and anything written "to stderr" (LiteRT's INFO lines) lands in it: give
    the closed ones /dev/null instead."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 for a known error, with a message)."""
    _reopen_closed_std_streams()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    handler = {"image": cmd_image, "video": cmd_video, "benchmark": cmd_benchmark,
               "stability": cmd_stability, "evaluate": cmd_evaluate,
               "models": cmd_models, "bag": cmd_bag, "record": cmd_record}[args.command]
    _handle_stop_signals()
    try:
        if getattr(args, "json", False) and sys.stdout is None:
            raise OutputError("standard output is closed: cannot print JSON")
        return handler(args)
    except (DenseHeadPoseError, ValueError) as exc:
        LOG.error("%s", exc)
        if isinstance(exc, OutputError):
            _silence_stdout()
        return 2
    except KeyboardInterrupt:
        return 130
    except Interrupted as stop:
        LOG.error("stopped by %s", signal.Signals(stop.signum).name)
        return 128 + stop.signum
    except BrokenPipeError:
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Python flushes stdout at exit; when it cannot take more, let that go quietly."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
