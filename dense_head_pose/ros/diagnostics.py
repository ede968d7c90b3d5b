"""Rolling statistics of the node, reported on /diagnostics.

Latency (header stamp to output) is only as good as the stamps: a camera whose clock is not
this machine's, or a bag replayed with its old stamps, gives numbers that mean nothing (a
stamp of 1000 s "lags" 56 years). Latencies outside [-1 s, 60 s] are therefore not averaged
but counted, and the report says how many frames had such stamps.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

#: Stamp-to-output latencies outside this range (ms) come from another clock, not from us.
PLAUSIBLE_LATENCY_MS = (-1000.0, 60000.0)


class NodeStats:
    """Thread-safe counters and recent timings (the worker writes, a timer reports)."""

    def __init__(self, window: int = 100) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.errors = 0
        self.outputs_skipped = 0
        self.last_error = ""
        self._errors_reported = 0
        self._done_times: deque[float] = deque(maxlen=window)
        self._processing_ms: deque[float] = deque(maxlen=window)
        self._latency_ms: deque[float] = deque(maxlen=window)
        self.implausible_stamps = 0
        self._faces: deque[int] = deque(maxlen=window)
        self._stages: dict[str, deque[float]] = {}
        self._window = window

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a part of the frame's work (estimation, each output's build and publish)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - start) * 1e3
            with self._lock:
                self._stages.setdefault(name, deque(maxlen=self._window)).append(ms)

    def on_received(self, replaced_unprocessed: bool) -> None:
        """A frame arrived; ``replaced_unprocessed`` if it displaced one never processed."""
        with self._lock:
            self.received += 1
            self.dropped += int(replaced_unprocessed)

    def on_dropped(self) -> None:
        """A frame was discarded without processing (e.g. no model loaded)."""
        with self._lock:
            self.dropped += 1

    def on_outputs_skipped(self) -> None:
        """A frame's heavy outputs were replaced by a newer frame's before being built."""
        with self._lock:
            self.outputs_skipped += 1

    def on_processed(self, processing_ms: float, latency_ms: float | None, faces: int) -> None:
        """A frame was processed and its outputs published."""
        with self._lock:
            self.processed += 1
            self._done_times.append(time.monotonic())
            self._processing_ms.append(processing_ms)
            if latency_ms is not None:
                if PLAUSIBLE_LATENCY_MS[0] <= latency_ms <= PLAUSIBLE_LATENCY_MS[1]:
                    self._latency_ms.append(latency_ms)
                else:
                    self.implausible_stamps += 1
            self._faces.append(faces)

    def on_error(self, message: str) -> None:
        """A frame could not be used (bad encoding, corrupt data, ...)."""
        with self._lock:
            self.errors += 1
            self.last_error = message

    def status(self, name: str, hardware_id: str, model_error: str | None,
               header: Header, rejected_parameters: list[str] | None = None,
               extra: dict[str, str] | None = None, state: str = "active"
               ) -> DiagnosticArray:
        """The current state as a DiagnosticArray with one status."""
        with self._lock:
            times = list(self._done_times)
            now = time.monotonic()
            recent = [t for t in times if now - t < 5.0]
            rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and \
                recent[-1] > recent[0] else 0.0

            def stat(values: deque, q: float) -> str:
                return f"{np.percentile(values, q):.2f}" if values else "nan"

            values = {
                "rate_hz": f"{rate:.2f}",
                "processing_ms_median": stat(self._processing_ms, 50),
                "processing_ms_p95": stat(self._processing_ms, 95),
                "latency_ms_median": stat(self._latency_ms, 50),
                "latency_ms_p95": stat(self._latency_ms, 95),
                "faces_last": str(self._faces[-1]) if self._faces else "0",
                "frames_received": str(self.received),
                "frames_processed": str(self.processed),
                "frames_dropped": str(self.dropped),
                "frame_errors": str(self.errors),
                "heavy_outputs_skipped": str(self.outputs_skipped),
                "last_error": self.last_error,
                "stamps_not_from_this_clock": str(self.implausible_stamps),
            }
            if rejected_parameters:
                values["rejected_parameters"] = ", ".join(rejected_parameters)
            values.update(extra or {})
            # where the time goes: estimation, and each output built and handed to DDS
            for stage, samples in self._stages.items():
                values[f"stage_ms_median_{stage}"] = stat(samples, 50)
            new_errors = self.errors - self._errors_reported
            self._errors_reported = self.errors
            level, message = DiagnosticStatus.OK, "running"
            if rejected_parameters:
                level, message = DiagnosticStatus.WARN, (
                    f"parameters refused or ignored at start-up: "
                    f"{', '.join(rejected_parameters)}")
            if model_error:
                level, message = DiagnosticStatus.ERROR, f"{state}: {model_error}"
            elif state != "active":  # managed: where the node stands
                message = {"unconfigured": "unconfigured: waiting for configure",
                           "inactive": "inactive: models loaded, no frames taken"}.get(
                    state, state) if level == DiagnosticStatus.OK else message
            elif new_errors:  # unusable frames since the last report
                level, message = DiagnosticStatus.WARN, f"{new_errors} bad frame(s): " \
                    f"{self.last_error}"
            elif self.processed == 0 and level == DiagnosticStatus.OK:
                message = "waiting for images"
        status = DiagnosticStatus(level=level, name=name, message=message,
                                  hardware_id=hardware_id,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        return DiagnosticArray(header=header, status=[status])
