"""The dataset options of ``bag`` and ``video``: many inputs, a Ray cluster, chunks,
``--resume`` and one table (:mod:`dense_head_pose.dataset`)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from ..lifetime import Interrupted
from . import common
from .common import LOG

#: Chunk length on a cluster when ``--chunk-seconds`` is not given.
CLUSTER_CHUNK_S = 300.0


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("datasets (many recordings; docs/cluster.md)")
    g.add_argument("--ray", metavar="ADDRESS",
                   help="run on a Ray cluster: auto, HOST:PORT or ray://HOST:PORT (every node "
                        "sees the inputs, outputs and --models at the same paths; pip install "
                        "\"dense-head-pose[cluster]\")")
    g.add_argument("--workers", type=common.count(1, 100_000), default=None, metavar="N",
                   help="with --ray: workers (default: one per CPU of the cluster)")
    g.add_argument("--chunk-seconds", type=common.number(0, 1e7), default=None, metavar="S",
                   help="cut bags longer than S seconds into chunks processed in parallel "
                        f"(0: never; default: {CLUSTER_CHUNK_S:g} with --ray, never "
                        "locally); not with an output bag (--out)")
    g.add_argument("--warmup-seconds", type=common.number(0, 600), default=5.0, metavar="S",
                   help="each chunk starts S seconds early, unwritten, so tracking has "
                        "settled at its first frame (default 5)")
    g.add_argument("--resume", action="store_true",
                   help="skip every input whose outputs are complete from the same input, "
                        "options and model pack (outputs without a record of completion are "
                        "redone, written over)")
    g.add_argument("--summary", metavar="FILE", type=Path,
                   help="one table of every face of every frame (FILE: .parquet or .csv), "
                        "and FILE's stem + .recordings: a row per recording")


def wanted(args: argparse.Namespace, inputs: list[str]) -> bool:
    """Whether the dataset runner is needed (else the command's own path runs)."""
    return bool(args.ray or args.resume or args.summary or args.chunk_seconds
                or (len(inputs) > 1 and args.command == "video"))


def refuse_outputs_in_searched(args: argparse.Namespace, arguments: list[str], kind: str,
                               *outputs: tuple[str, Any]) -> None:
    """No output inside a directory that was searched for inputs (OutputPathError)."""
    from ..dataset.inputs import searched_directories
    from ..output_files import refuse_inputs

    roots = searched_directories(arguments, kind)
    for flag, target in (*outputs, ("--summary", args.summary)):
        if target is not None and roots:
            refuse_inputs(flag, target, roots)


def run(args: argparse.Namespace, inputs: list[str], settings: Any, out: Path | None,
        csv: Path | None, plot: Path | None) -> int:
    """Run the dataset; 2 if any recording failed."""
    from ..dataset.local_pool import LocalPool
    from ..dataset.planning import DatasetOptions
    from ..dataset.runner import run_dataset, status_lines
    from ..dataset.state import run_key

    chunk_s = args.chunk_seconds if args.chunk_seconds is not None else (
        CLUSTER_CHUNK_S if args.ray else 0.0)
    if 0 < chunk_s < 1:
        raise ValueError(f"--chunk-seconds {chunk_s:g}: 0 (never) or at least 1")
    estimator_options = common.estimator_options(args)
    key = run_key({"estimator": dataclasses.asdict(estimator_options),
                   "settings": dataclasses.asdict(settings), "chunk_s": chunk_s,
                   "warmup_s": args.warmup_seconds})
    options = DatasetOptions(out=out, csv=csv, plot=plot, summary=args.summary,
                             resume=args.resume, chunk_s=chunk_s or None,
                             warmup_s=args.warmup_seconds, key=key)

    def pool() -> Any:
        if args.ray:
            from ..dataset.cluster import RayPool

            made = RayPool(args.ray, args.models, estimator_options, settings, args.workers)
            LOG.info("Ray cluster at %s: %d worker(s), the model pack loaded on each",
                     args.ray, made.capacity)
            return made
        return LocalPool(args.models, estimator_options, settings, getattr(args, "jobs", 1))

    start = time.perf_counter()
    counts = {"done": 0, "skipped": 0, "failed": 0}
    media = 0.0
    try:
        for status in run_dataset(inputs, settings, options, pool, common.progress):
            counts[status.get("status", "failed")] += 1
            if status.get("status") == "done":
                media += status.get("media_s") or 0.0
            for i, line in enumerate(status_lines(status)):
                level = logging.ERROR if status.get("status") == "failed" and i == 0 else \
                    logging.INFO
                LOG.log(level, "%s", line)
            if getattr(args, "json", False) and args.command == "bag":
                common.print_json(common.json_safe(status))
    except (KeyboardInterrupt, Interrupted):
        LOG.error("interrupted: %d recording(s) done, their outputs whole; the others left "
                  "no output (%s)", counts["done"], "--resume does the rest" if
                  options.summary or options.out or options.csv or options.plot else "run again")
        raise
    wall = time.perf_counter() - start
    LOG.info("%d recording(s): %d done, %d skipped (done before), %d failed; %.1f s of media "
             "in %.1f s (%.1fx real time)%s", len(inputs), counts["done"], counts["skipped"],
             counts["failed"], media, wall, media / wall if wall else float("nan"),
             f"; table {args.summary}" if args.summary else "")
    return 2 if counts["failed"] else 0
