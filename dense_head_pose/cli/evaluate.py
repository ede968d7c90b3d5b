"""``dense-head-pose evaluate aflw2000``: the standard accuracy table of the options given."""

from __future__ import annotations

import argparse

from ..evaluation.aflw2000 import PROTOCOLS
from ..output_files import check_new_file, plot_path, refuse_inputs
from . import common
from .common import LOG


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy against labelled truth (AFLW2000-3D): "
                       "NME by yaw, pose MAE, geodesic error, detector misses")
    esub = p.add_subparsers(dest="dataset", required=True, parser_class=common.Parser)
    e = esub.add_parser("aflw2000", help="AFLW2000-3D: imageNNNNN.jpg + .mat (3DDFA's "
                        "benchmark files used when beside it)")
    e.add_argument("directory", metavar="DIR")
    e.add_argument("--benchmark-files", metavar="DIR",
                   help="3DDFA's AFLW2000-3D_3ddfa folder (default: beside DIR, if there)")
    e.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both",
                   help="benchmark: the benchmark's crop boxes; detector: the whole "
                        "pipeline, detector included (default both)")
    e.add_argument("--stride", type=common.count(1, 10_000), default=1, metavar="N",
                   help="every N-th image only (default 1: all)")
    e.add_argument("--rotation", choices=("camera", "pose"), default="camera",
                   help="camera: the regressor's affine camera, the labels' own frame (as "
                        "3DDFA_V2 reports); pose: the metric pose (Face.pose, with "
                        "--pose-method), detector protocol only")
    e.add_argument("--face-size", type=common.number(8, 4000), metavar="PX",
                   help="the distance protocol: every image scaled so that its labelled face "
                        "is PX pixels (sqrt of the labels' box area), centred on a grey "
                        "--canvas, as a robot sees people across the room")
    e.add_argument("--canvas", type=_canvas, default=(1280, 720), metavar="WxH",
                   help="the distance protocol's canvas (default 1280x720)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.add_argument("--plot", metavar="PNG", help="write error against |yaw| as a PNG")
    common.add_pipeline_args(e)
    e.set_defaults(run=run)


def _canvas(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH, e.g. 1280x720, got {text!r}") from None
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise argparse.ArgumentTypeError(f"canvas sides must be 16 to 8192, got {text!r}")
    return width, height


def run(args: argparse.Namespace) -> int:
    """The figures (a table, or JSON), then the plot: a plot that fails loses nothing."""
    from ..evaluation import aflw2000 as evaluation

    plot = None
    if args.plot:  # checked before the work, not after it
        plot = plot_path(args.plot)
        refuse_inputs("--plot", plot, [p for p in (args.directory, args.benchmark_files) if p])
        check_new_file("--plot", plot, overwrite=True)
        evaluation.require_matplotlib()
    try:
        distance = (evaluation.Distance(args.face_size, args.canvas)
                    if args.face_size is not None else None)
    except ValueError as exc:
        raise ValueError(f"--face-size and --canvas: {exc}") from None
    samples = evaluation.load_aflw2000(args.directory, args.benchmark_files, args.stride)
    estimator = common.estimator(args)
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    progress = common.progress(len(samples))
    try:
        runs = evaluation.evaluate(estimator, samples, protocols, progress.update,
                                   args.rotation, distance)
    finally:
        progress.close()
    summaries = [evaluation.summarise(run) for run in runs]
    if args.json:
        common.print_json(common.json_safe(evaluation.to_json(summaries, estimator.options,
                                                              distance)))
    else:
        shown = "" if distance is None else (
            f", faces of {distance.face_size:g} px on {distance.canvas[0]}x"
            f"{distance.canvas[1]} canvases")
        print(f"AFLW2000-3D, {len(samples)} images ({args.directory}){shown}; NME in %, "
              "angles in degrees", flush=True)
        print(evaluation.table(summaries), flush=True)
    if plot is not None:
        evaluation.plot(runs, plot)
        LOG.info("wrote %s", plot)
    return 0
