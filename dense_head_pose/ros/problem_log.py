"""Warnings about bad input: throttled per kind of problem, clipped, bounded state."""

from __future__ import annotations

import re
import time
from typing import Any

_QUOTED_OR_NUMBER = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


def clip(text: str, limit: int = 300) -> str:
    """``text`` cut to ``limit`` characters: messages may quote what a sender put in a
    message (an encoding name of 10 kB), and logs and diagnostics must stay readable."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class ProblemLog:
    """Warnings throttled per kind of problem, not per call site: a flood of truncated
    frames prints once every few seconds, yet a different problem in between still shows at
    once. The kind is the message with what the input put in it (quoted text, numbers)
    blanked out, so 3,000 made-up encodings are one kind; at most ``max_kinds`` are told
    apart, the rest share one throttle, so the state is bounded whatever the input says.
    The text is clipped (it may quote the input)."""

    def __init__(self, logger: Any, period_s: float = 5.0, max_kinds: int = 64) -> None:
        self._logger = logger
        self._period = period_s
        self._max_kinds = max_kinds
        self._last: dict[str, float] = {}

    def warning(self, kind: str, text: str) -> None:
        """Log ``text`` unless the same kind of problem was logged less than a period ago."""
        key = f"{kind}: {_QUOTED_OR_NUMBER.sub('#', text)[:80]}"
        if key not in self._last and len(self._last) >= self._max_kinds:
            key = "other"
        now = time.monotonic()
        if now - self._last.get(key, -1e9) >= self._period:
            self._last[key] = now
            self._logger.warning(clip(text))
