"""Landmark jitter between consecutive frames, free of head motion.

A head that moves, turns or comes closer moves its landmarks by a similarity transform; what
is left after the best similarity fit of one frame's landmarks onto the next is jitter. The
peers benchmark (``scripts/benchmark_peers.py``) compares systems by it, in units of their
outer-eye distance.
"""

from __future__ import annotations

import numpy as np


def similarity_residual(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between ``b`` and the best similarity transform of ``a`` onto it
    (``(N, 2)`` points each)."""
    ca, cb = a - a.mean(0), b - b.mean(0)
    u, s, vt = np.linalg.svd(ca.T @ cb)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1.0, d]) @ vt
    scale = (s * [1.0, d]).sum() / (ca ** 2).sum()
    return float(np.sqrt(np.mean(np.sum((scale * ca @ rot - cb) ** 2, axis=1))))
