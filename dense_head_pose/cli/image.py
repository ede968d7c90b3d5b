"""``dense-head-pose image``: faces of image files, printed and drawn."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .. import images
from ..errors import DenseHeadPoseError
from ..output_files import make_directory, refuse_inputs
from ..pipeline.drawing import drawer as make_drawer
from ..video.sources import IMAGE_SUFFIXES
from . import common
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="estimate faces in image files (JSON: 'frame' is the "
                       "file name, 'id' is null)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    common.add_pipeline_args(p)
    common.add_output_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Estimate, optionally draw and print, for each path; 1 if any could not be read or
    drawn (the others are processed)."""
    outputs = output_paths(args.out, args.paths) if args.out else {}
    intrinsics = common.intrinsics(args)
    said = common.IntrinsicsNote(args)
    estimator = common.estimator(args)
    drawer = make_drawer(args.mode) if args.out else None
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
            common.emit(result, Path(path).name, said)
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
    # an output's folder is made when missing, before any work (one rule for every command)
    make_directory("--out", target if into_dir else (target.parent if str(target.parent)
                                                      else Path(".")))
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
