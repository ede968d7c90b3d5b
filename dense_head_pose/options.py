"""Validation of option dataclasses: one rule for the library, the CLI and the node.

Each options class (``EstimatorOptions``, ``TrackerOptions``, ``MotionParams``) names the
type of each field and the inclusive range of each number in one table, ``LIMITS``; the CLI's
argument types and the node's parameter descriptors read the same table, so a range cannot
differ between them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

_ACCEPTED = {int: (int, np.integer), float: (int, float, np.number), bool: (bool, np.bool_),
             str: (str,)}


def check_fields(options: Any, kinds: Mapping[str, type],
                 limits: Mapping[str, tuple[float, float]],
                 choices: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """TypeError or ValueError naming the first field of ``options`` that is not of its
    kind, outside its inclusive range in ``limits`` (NaN and infinities are), or not one of
    its ``choices``."""
    for name, kind in kinds.items():
        value = getattr(options, name)
        # a bool is an int to Python, never a count or a threshold here
        if not isinstance(value, _ACCEPTED[kind]) or (kind is not bool
                                                      and isinstance(value, bool)):
            raise TypeError(f"{name} must be {kind.__name__}, got {value!r}")
    for name, (low, high) in limits.items():
        value = getattr(options, name)
        if not (math.isfinite(float(value)) and low <= value <= high):
            raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    for name, allowed in (choices or {}).items():
        if getattr(options, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {getattr(options, name)!r}")
