"""Many recordings: outputs named and checked before any work, processed one after another
or ``jobs`` at a time, each failure reported and the rest processed.

A bag that fails, for whatever reason, is reported with that reason (:class:`BagFailure`)
and the others are processed; a worker process that dies takes only its own bag down (its
pool's other bags run again, one at a time, to find it); a stop signal to the command stops
every worker with its outputs closed.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError
from ..lifetime import stop_signals_held
from ..output_files import (
    check_new_file,
    input_stem,
    make_directory,
    plot_path,
    refuse_inputs,
)
from ..pipeline.estimator import EstimatorOptions, HeadPoseEstimator
from ..video.tracking import TrackerOptions
from .outputs import pyplot
from .processor import BagFailure, BagOptions, BagSummary, process_bag


def output_paths(inputs: Sequence[str], options: BagOptions) -> list[BagOptions]:
    """Each input's options, every output checked before any work. With one input the
    paths are the outputs themselves; with several they are directories (made if needed)
    holding one output per input, named after it (``OUT/<bag>``, ``CSV/<bag>.csv``,
    ``PLOT/<bag>.png``; inputs of the same name in different directories are told apart by
    their directories). :class:`OutputPathError` (exit 2) if an output exists, cannot be
    written, or would be an input or lie inside one."""
    if options.plot:
        pyplot()  # before hours of work, not after
    out = [_single(options)] if len(inputs) == 1 else _per_input(inputs, options)
    for o in out:
        for flag, target in (("--out", o.out), ("--csv", o.csv), ("--plot", o.plot)):
            if target is not None:
                refuse_inputs(flag, target, inputs)
                check_new_file(flag, target)
    return out


def _single(options: BagOptions) -> BagOptions:
    return replace(options, plot=plot_path(options.plot) if options.plot else None)


def unique_names(inputs: Sequence[str], suffixes: tuple[str, ...] = (".mcap", ".db3", ".bag")
                 ) -> list[str]:
    """A name per input, all different: its own name (:func:`input_stem`), preceded by as
    many of its parent directories' names as it takes to tell it from the others."""
    paths = [Path(os.path.realpath(i)) for i in inputs]
    stems = [input_stem(i, suffixes) for i in inputs]

    def name(i: int, depth: int) -> str:
        parents = paths[i].parent.parts[-depth:] if depth else ()
        return "-".join([*parents, stems[i]]).lstrip("/-")

    names = []
    for i in range(len(paths)):
        depth = 0
        while depth < len(paths[i].parts) and any(
                paths[j] != paths[i] and name(j, depth) == name(i, depth)
                for j in range(len(paths))):
            depth += 1
        names.append(name(i, depth))
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # the same input twice
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique


def _per_input(inputs: Sequence[str], options: BagOptions) -> list[BagOptions]:
    names = unique_names(inputs)
    for flag, directory in (("--out", options.out), ("--csv", options.csv),
                            ("--plot", options.plot)):
        if directory is not None:
            refuse_inputs(flag, directory, inputs)
            make_directory(flag, directory)
    return [replace(options,
                    out=options.out / name if options.out else None,
                    csv=options.csv / f"{name}.csv" if options.csv else None,
                    plot=options.plot / f"{name}.png" if options.plot else None)
            for name in names]


_STOPPING = False
_PROGRESS: Any = None


def _worker_init(progress: Any) -> None:
    """In a worker: SIGTERM or SIGINT stops the bag as Ctrl-C does (its outputs closed,
    valid), and once stopped the worker takes no further bag. The handler only records the
    stop; the bag's loop raises it after the frame in hand (:func:`_stop_if_asked`). Raised
    by the handler itself, it could land inside the progress queue's ``put``, between a
    wake-up of its feeder thread and the bookkeeping of that wake-up: every later wake-up,
    the one that ends the feeder at exit included, then went to the wrong waiter, and the
    worker never exited."""
    global _PROGRESS
    _PROGRESS = progress

    def stop(signum: int, frame: object) -> None:
        global _STOPPING
        _STOPPING = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _stop_if_asked() -> None:
    if _STOPPING:
        raise KeyboardInterrupt


def _worker(path: str, estimator_options: EstimatorOptions, models: str | None,
            tracker: TrackerOptions, options: BagOptions) -> BagSummary | BagFailure:
    """One bag in a worker process (``--jobs``): its own estimator, one thread."""
    _stop_if_asked()
    sent = [0]

    def on_frame(n: int, total: int | None) -> None:
        _stop_if_asked()
        if _PROGRESS is not None and n - sent[0] >= 10:
            _PROGRESS.put(n - sent[0])
            sent[0] = n

    try:
        estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
        _stop_if_asked()
        summary = process_bag(path, estimator, tracker, options, on_frame)
    except Exception as exc:  # anything: reported for this bag, the batch goes on
        return BagFailure(str(path), _reason(exc))
    if _PROGRESS is not None:
        _PROGRESS.put(summary.frames_read - sent[0])
    return summary


def _reason(exc: BaseException) -> str:
    """An exception as one line: our errors' own message, others' type too."""
    text = " ".join(str(exc).split())[:500]
    if isinstance(exc, DenseHeadPoseError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def process_bags(inputs: Sequence[str], estimator_options: EstimatorOptions,
                 models: str | None, tracker: TrackerOptions, options: BagOptions,
                 jobs: int = 1, progress_factory: Callable[[int | None], Any] | None = None
                 ) -> Iterator[BagSummary | BagFailure]:
    """Process ``inputs``, ``jobs`` at a time (a process each); each bag's summary, or a
    :class:`BagFailure` saying why it could not be processed, as it finishes. A bag that
    fails, for whatever reason, does not stop the others."""
    per_bag = output_paths(inputs, options)
    if jobs <= 1 or len(inputs) == 1:
        yield from _serial(inputs, per_bag, estimator_options, models, tracker,
                           progress_factory)
        return
    yield from _parallel(inputs, per_bag, estimator_options, models, tracker, jobs,
                         progress_factory)


def _serial(inputs: Sequence[str], per_bag: Sequence[BagOptions],
            estimator_options: EstimatorOptions, models: str | None,
            tracker: TrackerOptions, progress_factory: Callable[[int | None], Any] | None
            ) -> Iterator[BagSummary | BagFailure]:
    estimator = HeadPoseEstimator.from_model_dir(models, estimator_options)
    for path, bag_options in zip(inputs, per_bag):
        bar = progress_factory(None) if progress_factory else None
        seen = [0]

        def on_frame(n: int, total: int | None, bar: Any = bar, seen: list = seen) -> None:
            if bar is not None:
                if total and bar.total != total:
                    bar.total = total
                bar.update(n - seen[0])
                seen[0] = n

        try:
            result: BagSummary | BagFailure = process_bag(path, estimator, tracker,
                                                          bag_options, on_frame)
        except Exception as exc:  # anything: reported for this bag, the batch goes on
            result = BagFailure(str(path), _reason(exc))
        finally:
            if bar is not None:
                bar.close()
        yield result


def _parallel(inputs: Sequence[str], per_bag: Sequence[BagOptions],
              estimator_options: EstimatorOptions, models: str | None,
              tracker: TrackerOptions, jobs: int,
              progress_factory: Callable[[int | None], Any] | None
              ) -> Iterator[BagSummary | BagFailure]:
    """``jobs`` worker processes, one bag each at a time; one progress bar of frames. A
    worker that dies takes only its own bag down: the bags it shared the pool with are
    run again, one at a time, so the one that kills its worker is found and reported."""
    import multiprocessing
    import queue

    context = multiprocessing.get_context("spawn")  # no LiteRT state forked
    progress = context.Queue()
    bar = progress_factory(None) if progress_factory else None
    work = list(zip(inputs, per_bag))
    suspects: list[tuple[str, BagOptions]] = []

    def drain() -> None:
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            while True:
                n = progress.get_nowait()
                if bar is not None:
                    bar.update(n)

    try:
        while work or suspects:
            batch, size = (work, jobs) if work else (suspects[:1], 1)
            if not work:
                suspects = suspects[1:]
            broken: list[tuple[str, BagOptions]] = []
            for item, result in _pool_run(context, batch, size, progress, drain,
                                          (estimator_options, models, tracker)):
                if result is None:
                    broken.append(item)
                else:
                    yield result
            work = []
            if size == 1:
                yield from (BagFailure(path, "its worker process died (killed, or a crash in "
                                       "native code)") for path, _ in broken)
            else:
                suspects += broken
    finally:
        drain()
        if bar is not None:
            bar.close()
        progress.close()


def _pool_run(context: Any, work: Sequence[tuple[str, BagOptions]], jobs: int,
              progress: Any, drain: Callable[[], None], shared: tuple[Any, ...]
              ) -> Iterator[tuple[tuple[str, BagOptions], BagSummary | BagFailure | None]]:
    """Run ``work`` in a pool of ``jobs`` processes; each item with its result, None when
    its worker died. Whatever stops the caller (Ctrl-C, SIGTERM) stops every worker, each
    closing its outputs as a single process does, and waits for them. A stop signal is
    acted on between two waits, never inside the executor's own locks (see
    :func:`stop_signals_held`)."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init,
                               initargs=(progress,))
    try:
        with stop_signals_held() as came:
            pending = {pool.submit(_worker, path, *shared[:2], shared[2], options):
                       (path, options) for path, options in work}
            while pending and not came:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                drain()
                for future in done:
                    item = pending.pop(future)
                    try:
                        yield item, future.result()
                    except BrokenProcessPool:
                        yield item, None
                    except Exception as exc:
                        yield item, BagFailure(item[0], _reason(exc))
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: Any) -> None:
    """SIGTERM to every worker (each closes its outputs and takes no further bag)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        with contextlib.suppress(OSError, ValueError):
            os.kill(process.pid, signal.SIGTERM)
