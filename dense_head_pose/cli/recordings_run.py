"""What ``bag`` and ``video`` share to run their recordings, one or many: the options of a
dataset (many inputs, a Ray cluster, chunks, ``--resume``, one table), the pool that runs
them, and what is said of each (:mod:`dense_head_pose.dataset`)."""

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
    from ..dataset.cluster import DEFAULT_TIMEOUT_S

    g = p.add_argument_group("datasets (many recordings; docs/cluster.md)")
    g.add_argument("--ray", metavar="ADDRESS", type=_address,
                   help="run on a Ray cluster: auto, HOST:PORT or ray://HOST:PORT (every node "
                        "sees the inputs, outputs and --models at the same paths; pip install "
                        "\"dense-head-pose[cluster]\")")
    g.add_argument("--ray-timeout", type=common.number(1, 3600), default=DEFAULT_TIMEOUT_S,
                   metavar="S", help="with --ray: seconds to join the cluster before giving "
                                     f"up (default {DEFAULT_TIMEOUT_S:g})")
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
                   help="skip every input whose outputs asked now were all made, whole, from "
                        "the same input, options and model pack; the rest are done again, "
                        "written over")
    g.add_argument("--summary", metavar="FILE", type=Path,
                   help="one table of every face of every frame (FILE: .parquet or .csv), "
                        "and FILE's stem + .recordings: a row per recording")


def _address(text: str) -> str:
    from ..dataset.cluster import ClusterError, host_port

    try:
        host_port(text)
    except ClusterError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--ray ")) from None
    return text


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
        csv: Path | None, plot: Path | None, emit: Any = None) -> int:
    """Run the recordings; 2 if any failed."""
    from ..dataset.driver import PoolError, run_recordings
    from ..dataset.planning import RunOptions
    from ..dataset.state import run_key

    chunk_s = args.chunk_seconds if args.chunk_seconds is not None else (
        CLUSTER_CHUNK_S if args.ray else 0.0)
    if 0 < chunk_s < 1:
        raise ValueError(f"--chunk-seconds {chunk_s:g}: 0 (never) or at least 1")
    estimator_options = common.estimator_options(args)
    key = run_key({"estimator": dataclasses.asdict(estimator_options),
                   "settings": dataclasses.asdict(settings), "chunk_s": chunk_s,
                   "warmup_s": args.warmup_seconds})
    options = RunOptions(out=out, csv=csv, plot=plot, summary=args.summary,
                         resume=args.resume, chunk_s=chunk_s or None,
                         warmup_s=args.warmup_seconds, key=key, several=len(inputs) > 1)
    jobs = getattr(args, "jobs", 1)

    def pool() -> Any:
        if args.ray:
            from ..dataset.ray_pool import RayPool

            made = RayPool(args.ray, args.models, estimator_options, settings, args.workers,
                           args.ray_timeout)
            LOG.info("Ray cluster at %s: %d worker(s), the model pack loaded on each",
                     args.ray, made.capacity)
            return made
        if jobs > 1:
            from ..dataset.local_pool import ProcessPool

            return ProcessPool(args.models, estimator_options, settings, jobs)
        from ..dataset.local_pool import InProcessPool

        return InProcessPool(args.models, estimator_options, settings, emit)

    start = time.perf_counter()
    counts = {"done": 0, "skipped": 0, "failed": 0, "interrupted": 0}
    statuses: list[dict[str, Any]] = []
    try:
        for status in run_recordings(inputs, settings, options, pool, common.progress):
            statuses.append(status)
            _said(args, status, counts)
    except (KeyboardInterrupt, Interrupted):
        LOG.error("interrupted: %d recording(s) done; the one(s) in hand keep the frames "
                  "processed so far, closed and whole; %s", counts["done"],
                  "--resume does the rest" if args.summary or out or csv or plot else
                  "the others were not started")
        raise
    except PoolError:
        finished = {s.get("path") for s in statuses}
        for path in (p for p in inputs if p not in finished):
            LOG.error("%s: not run", path)
        return 2
    _totals(args, inputs, statuses, counts, time.perf_counter() - start, jobs)
    return 2 if counts["failed"] else 0


def _said(args: argparse.Namespace, status: dict[str, Any], counts: dict[str, int]) -> None:
    from ..dataset.status import status_lines

    counts[status.get("status", "failed")] = counts.get(status.get("status", "failed"), 0) + 1
    for i, line in enumerate(status_lines(status)):
        level = logging.ERROR if status.get("status") == "failed" and i == 0 else logging.INFO
        LOG.log(level, "%s", line)
    if getattr(args, "json", False) and args.command == "bag":
        common.print_json(common.json_safe(status))


def _totals(args: argparse.Namespace, inputs: list[str], statuses: list[dict[str, Any]],
            counts: dict[str, int], wall: float, jobs: int) -> None:
    if len(inputs) == 1 and not (args.summary or args.resume or args.ray):
        return
    media = sum(s.get("media_s") or 0.0 for s in statuses if s.get("status") == "done")
    LOG.info("%d recording(s): %d done, %d skipped (done before), %d failed; %.1f s of media "
             "in %.1f s (%.1fx real time, %s)%s", len(inputs), counts["done"],
             counts["skipped"], counts["failed"], media, wall,
             media / wall if wall else float("nan"),
             "a Ray cluster" if args.ray else f"{jobs} job(s)",
             f"; table {args.summary}" if args.summary else "")
