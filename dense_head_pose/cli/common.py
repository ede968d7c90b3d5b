"""What every subcommand shares: option groups, their conversion to the library's options,
JSON on stdout and the progress bar (how signals stop a command:
:mod:`dense_head_pose.lifetime`).

Defaults and ranges come from the library's options (``EstimatorOptions``,
``TrackerOptions``, ``MotionParams``): the CLI has none of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import DenseHeadPoseError
from ..pipeline.detection import parse_input_size
from ..pipeline.drawing import DRAW_MODES
from ..pipeline.estimator import POSE_METHODS, PRECISIONS, EstimatorOptions, HeadPoseEstimator
from ..pipeline.pose import CameraIntrinsics
from ..pipeline.results import FrameResult
from ..video.motion_filter import MotionParams
from ..video.smoothing import QUANTITIES, SmoothingOptions
from ..video.tracking import TrackerOptions

LOG = logging.getLogger("dense_head_pose")
MODES = (*DRAW_MODES, "mesh")


def count(low: float, high: float = 1_000_000) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]."""
    low, high = int(low), int(high)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not in {low}..{high}")
        return value
    return parse


def number(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a number in [low, high] (never NaN)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:  # NaN fails too
            raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g}")
        return value
    return parse


def add_pipeline_args(p: argparse.ArgumentParser) -> None:
    """The estimator's options (``EstimatorOptions``)."""
    defaults, limits = EstimatorOptions(), EstimatorOptions.LIMITS
    p.add_argument("--models", metavar="DIR", help="model pack directory (default: search path)")
    p.add_argument("--threads", type=count(*limits["num_threads"]),
                   default=defaults.num_threads,
                   help="LiteRT threads per model, and the BLAS threads used (default "
                        f"{defaults.num_threads})")
    p.add_argument("--threshold", type=number(*limits["score_threshold"]),
                   default=defaults.score_threshold,
                   help=f"detector score threshold, {limits['score_threshold'][0]:g}.."
                        f"{limits['score_threshold'][1]:g} (default {defaults.score_threshold})")
    p.add_argument("--detector-input", type=_detector_input, default=defaults.detector_input,
                   metavar="auto|WxH",
                   help="detector input: auto, 320x240 for people close by and a close look "
                        "at the few places where it scores small faces likeliest for people "
                        "across the room; or WxH, one look at that size (320x240: the "
                        f"fastest) (default {defaults.detector_input})")
    p.add_argument("--detector-model", choices=EstimatorOptions.CHOICES["detector_model"],
                   default=defaults.detector_model,
                   help="detector weights: rfb320 (trained at 320x240) or rfb640 (trained at "
                        f"640x480) (default {defaults.detector_model})")
    p.add_argument("--max-faces", type=count(*limits["max_faces"]), default=defaults.max_faces,
                   help=f"largest N faces per frame (default {defaults.max_faces})")
    p.add_argument("--retry-mirrored", action=argparse.BooleanOptionalAction,
                   default=defaults.retry_mirrored,
                   help="when the detector finds no face, look again in the mirrored frame "
                        "(finds more profiles; default on)")
    p.add_argument("--refine", action=argparse.BooleanOptionalAction, default=defaults.refine,
                   help="second alignment pass from the first pass's landmarks (default off)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=defaults.mirror,
                   help="average each fit with its mirrored crop's, one more inference per "
                        "face (default on)")
    p.add_argument("--accurate", action="store_true", default=defaults.accurate,
                   help="accuracy mode: five shifted crops and their mirrors averaged (ten "
                        "inferences per face)")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                   help="regressor: float32 (default) or int8 (models build --precision int8)")
    p.add_argument("--pose-method", choices=POSE_METHODS, default=defaults.pose_method,
                   help="metric pose from the 3DMM camera (affine) or refined by solvePnP")
    p.add_argument("--intrinsics", nargs=4, type=float, metavar=("FX", "FY", "CX", "CY"),
                   help="camera intrinsics in pixels (default: f = width, centred)")


def _detector_input(text: str) -> str:
    try:
        parse_input_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_tracking_args(p: argparse.ArgumentParser, look_ahead: str | None = None) -> None:
    """The tracker's options (``TrackerOptions``); ``look_ahead``: also ``--look-ahead``,
    for a recording, its default said so."""
    defaults = TrackerOptions()
    if look_ahead is not None:
        p.add_argument("--look-ahead", type=count(*TrackerOptions.LIMITS["look_ahead"]),
                       default=None, metavar="FRAMES",
                       help="smooth each frame's faces with this many later frames too (a "
                            "recording is known ahead; docs/video.md); 0: as live "
                            f"({look_ahead})")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=defaults.smooth,
                   help="smoothing of each tracked face (default on)")
    p.add_argument("--detect-every", type=count(*TrackerOptions.LIMITS["detect_every"]),
                   default=defaults.detect_every, metavar="N",
                   help="run the detector every N frames, faces are tracked by their landmarks "
                        "in between (and it runs at once when one is lost); 1: every frame, "
                        f"no landmark tracking (default {defaults.detect_every})")
    shown = ", ".join(f"{q}={_params_text(getattr(defaults.smoothing, q))}" for q in QUANTITIES)
    p.add_argument("--filter", action="append", default=[], type=_filter_arg,
                   metavar="QUANTITY=NOISE,DRIFT,ACCELERATION",
                   help=f"filter parameters of one quantity ({', '.join(QUANTITIES)}; "
                        "docs/video.md); repeat for several. Defaults: " + shown)
    low, high = SmoothingOptions.LIMITS["switch_rate"]
    p.add_argument("--switch-rate", type=number(low, high),
                   default=defaults.smoothing.switch_rate, metavar="HZ",
                   help="how often per second a head is expected to start or stop moving "
                        f"(default {defaults.smoothing.switch_rate:g})")


def _params_text(params: MotionParams) -> str:
    return ",".join(f"{v:g}" for v in (params.noise, params.drift, params.acceleration))


def _filter_arg(text: str) -> tuple[str, MotionParams]:
    name, _, values = text.partition("=")
    if name not in QUANTITIES:
        raise argparse.ArgumentTypeError(f"unknown quantity {name!r}: one of "
                                         f"{', '.join(QUANTITIES)}")
    try:
        numbers = [float(v) for v in values.split(",")]
        if len(numbers) != 3:
            raise ValueError("give 3 numbers: noise, drift, acceleration")
        return name, MotionParams(*numbers)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc


def add_output_args(p: argparse.ArgumentParser) -> None:
    """Drawing and JSON output of ``image`` and ``video``."""
    p.add_argument("--mode", choices=MODES, default="pose", help="what to draw (default pose)")
    p.add_argument("--out", metavar="PATH",
                   help="write the drawing: with one input, to the file PATH (or into PATH if it "
                        "ends with / or is a directory); with several inputs, into the directory "
                        "PATH under the inputs' names. Inputs are never written over")
    p.add_argument("--json", action="store_true", help="print one JSON object per frame")


def estimator_options(args: argparse.Namespace) -> EstimatorOptions:
    """The pipeline options of :func:`add_pipeline_args`."""
    return EstimatorOptions(num_threads=args.threads, score_threshold=args.threshold,
                            max_faces=args.max_faces, retry_mirrored=args.retry_mirrored,
                            refine=args.refine, mirror=args.mirror, accurate=args.accurate,
                            precision=args.precision, pose_method=args.pose_method,
                            detector_input=args.detector_input,
                            detector_model=args.detector_model)


def tracker_options(args: argparse.Namespace) -> TrackerOptions:
    """The tracker options of :func:`add_tracking_args`."""
    smoothing = replace(SmoothingOptions(), switch_rate=args.switch_rate,
                        **dict(args.filter))  # others keep their defaults
    return TrackerOptions(detect_every=args.detect_every, smooth=args.smooth,
                          smoothing=smoothing, look_ahead=getattr(args, "look_ahead", 0) or 0)


def estimator(args: argparse.Namespace) -> HeadPoseEstimator:
    return HeadPoseEstimator.from_model_dir(args.models, estimator_options(args))


def intrinsics(args: argparse.Namespace) -> CameraIntrinsics | None:
    """``--intrinsics``, validated before any frame is read (ValueError: exit 2)."""
    return CameraIntrinsics(*args.intrinsics) if args.intrinsics else None


GUESSED = "guessed: f = image width, centred"
"""What ``--json`` says of the intrinsics when none were given."""


class IntrinsicsNote:
    """How the metric pose's intrinsics came (``given`` or :data:`GUESSED`), for each JSON
    frame; said once on stderr, with the first frame, when they are guessed: the
    translation is then metric only up to that guess."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.text = "given" if args.intrinsics else GUESSED
        self._said = bool(args.intrinsics)

    def __call__(self) -> str:
        if not self._said:
            self._said = True
            LOG.warning("no --intrinsics: the translation (x, y, z) takes the focal length to "
                        "be the image width, so it is metric only up to that guess; give FX "
                        "FY CX CY of your camera")
        return self.text


#: What argparse takes for a negative number rather than an option: its own rule misses the
#: exponent form, so ``--intrinsics 1 1 1 -1e30`` was read as an unknown option ``-1e30``.
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|nan)$", re.IGNORECASE)


class Parser(argparse.ArgumentParser):
    """argparse, taking ``-1e30`` for a number (see :data:`_NEGATIVE_NUMBER`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._negative_number_matcher = _NEGATIVE_NUMBER


# --------------------------------------------------------------------------------- output
class OutputError(DenseHeadPoseError):
    """Standard output cannot be written (full disk, closed): exit 2, one line. It ends the
    run, not only the recording being processed (``ends_the_run``)."""

    ends_the_run = True


def emit(result: FrameResult, frame: int | str, note: IntrinsicsNote) -> None:
    """A frame's JSON line, with how its intrinsics came (:class:`IntrinsicsNote`)."""
    print_json({**result.to_dict(frame), "intrinsics": note()})


def print_json(obj: object) -> None:
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


def json_safe(value: object) -> object:
    """``value`` with numpy numbers as floats and NaN/inf as null (JSON has neither)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    if isinstance(value, np.integer):
        return int(value)
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def progress(total: int | None, unit: str = "frame") -> Any:
    """A progress bar on stderr when it is a terminal (JSON on stdout is unaffected)."""
    from tqdm import tqdm

    # disable=None: only on a terminal; no stderr at all (2>&-): none
    return tqdm(total=total, unit=unit, disable=None if sys.stderr is not None else True,
                file=sys.stderr, dynamic_ncols=True)
