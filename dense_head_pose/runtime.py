"""LiteRT interpreter loading, with the runtimes tried in order of preference.

``ai_edge_litert`` (LiteRT, wheels for Python 3.10-3.13 and numpy 2) first, then the older
``tflite_runtime``, then full TensorFlow's ``tf.lite``: whichever a machine has, the pipeline
runs, and the error says what to install when none is present.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError


def _interpreter_class() -> type:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:
        pass
    try:
        import tensorflow as tf  # type: ignore[import-not-found]

        return tf.lite.Interpreter
    except ImportError as exc:
        raise ModelError("no TFLite runtime found: pip install ai-edge-litert") from exc


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[Any]:
    """Capture what native code writes to file descriptor 2 meanwhile (LiteRT prints "INFO:
    Created TensorFlow Lite XNNPACK delegate for CPU." on every interpreter, which no setting
    silences); yields a function returning the captured text, for error messages."""
    # Python had no stderr at start (``2>&-``): descriptor 2 may since have been reused by
    # any file opened later, which must not be swapped out
    if sys.__stderr__ is None:
        yield lambda: ""
        return
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield lambda: ""
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        _flush(sys.stderr)
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: (sink.seek(0), sink.read().decode(errors="replace"))[1]
        finally:
            _flush(sys.stderr)
            os.dup2(saved, 2)
            os.close(saved)


def _flush(stream: Any) -> None:
    """Flush a Python stream that may be None or broken."""
    if stream is not None:
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


class TFLiteModel:
    """One LiteRT model with a fixed input shape, allocated once.

    Tensors are allocated at construction; :meth:`run` copies a caller-owned input buffer in
    (a 170 KB copy for the 3DMM input, microseconds) rather than exposing views into the
    interpreter, which LiteRT forbids holding across ``invoke``.
    """

    def __init__(self, path: Path, input_shape: tuple[int, ...], num_threads: int = 1) -> None:
        cls = _interpreter_class()
        with native_stderr_captured() as captured:
            try:
                self._interp: Any = cls(model_path=str(path), num_threads=int(num_threads))
                in_detail = self._interp.get_input_details()[0]
                if tuple(in_detail["shape"]) != tuple(input_shape):
                    self._interp.resize_tensor_input(in_detail["index"], list(input_shape))
                self._interp.allocate_tensors()
                error = None
            except (ValueError, RuntimeError) as exc:
                error = exc
            detail = " ".join(captured().split()) if error is not None else ""
        if error is not None:
            raise ModelError(f"{path} is not a loadable TFLite model ({error}"
                             f"{'; ' + detail if detail else ''}); rebuild it with: "
                             "dense-head-pose models build") from error
        in_detail = self._interp.get_input_details()[0]
        if tuple(in_detail["shape"]) != tuple(input_shape) or in_detail["dtype"] != np.float32:
            raise ModelError(f"{path} takes {tuple(in_detail['shape'])} {in_detail['dtype']}, "
                             f"expected {input_shape} float32")
        self._input_index = in_detail["index"]
        self._output_indices = [d["index"] for d in self._interp.get_output_details()]
        self.path = path

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run the model on ``tensor`` (float32, the input shape) and return its outputs;
        :class:`ModelError` (one bounded line) if the interpreter fails."""
        try:
            self._interp.set_tensor(self._input_index, tensor)
            self._interp.invoke()
            return [self._interp.get_tensor(i) for i in self._output_indices]
        except (RuntimeError, ValueError) as exc:
            # LiteRT appends to one error text on every failed invoke: keep its first line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelError(f"{self.path} failed to run ({first}); rebuild it with: "
                             "dense-head-pose models build") from None


def limit_native_threads(count: int) -> None:
    """Pin the process's BLAS (OpenBLAS, MKL) and OpenCV thread pools to ``count`` threads.

    With their defaults both use every core: OpenBLAS's workers spin for a while after each
    numpy product they run (the dense reconstruction was one, before it moved to C, and still
    is when the native library is missing), and OpenCV parallelises resizes and warps of a few
    hundred microseconds, so a one-thread pipeline burnt up to twice its wall time in CPU
    (``scripts/benchmark_performance.py``): on a robot the other core is never idle. The pools
    are process-wide, so this is too; ``EstimatorOptions(limit_threads=False)`` leaves them.
    """
    import cv2

    cv2.setNumThreads(int(count))
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a dependency; without it BLAS keeps its default
        return
    threadpool_limits(limits=int(count), user_api="blas")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (ImportError without matplotlib). Its first
    use builds a font cache and says so at a level the commands' log would show: that line
    is not the user's business."""
    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    return plt
