"""The dense reconstruction product, ``mean @ linear.T + weights @ rhs + offset``, for several
faces.

Both dense models reduce to it (see
:class:`~dense_head_pose.pipeline.morphable_model.MorphableModel`): each vertex is its mean
position plus a fixed linear combination of per-face 3-vectors, all through the face's
affine map (a camera: scaled rotation and translation). With 38,365 vertices that is a tall,
thin product which BLAS runs at a quarter of the FMA units' pace, so it runs in C
(``native/dhp_dense.c``) over weights laid out in blocks of vertices; numpy does the same
product when the library is not built. Both agree to float32 rounding."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import native
from ..errors import NativeLibraryError

ENV_VAR = "DENSE_HEAD_POSE_DENSE_LIB"
ABI_VERSION = 1
_log = logging.getLogger(__name__)


def load_library(path: Path | None = None) -> ctypes.CDLL:
    """Load and type the dense product library, or raise :class:`NativeLibraryError`."""
    lib = native.load("dense", ENV_VAR, ABI_VERSION, "dense reconstruction", path=path)
    lib.dhp_dense_block.restype, lib.dhp_dense_block.argtypes = ctypes.c_int, []
    lib.dhp_dense_path.restype, lib.dhp_dense_path.argtypes = ctypes.c_char_p, []
    f = lib.dhp_dense_product
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                  ctypes.c_void_p]
    return lib


def _blocked(rows: np.ndarray, block: int) -> np.ndarray:
    """``(N, K)`` rows as ``(ceil(N / block), K, block)`` float32, zero-padded."""
    n, k = rows.shape
    n_blocks = -(-n // block)
    padded = np.zeros((n_blocks * block, k), np.float32)
    padded[:n] = rows
    return np.ascontiguousarray(padded.reshape(n_blocks, block, k).transpose(0, 2, 1))


class DenseProduct:
    """``out[f] = mean @ linear[f].T + weights @ rhs[f] + offset[f]`` over fixed ``(N, K)``
    weights and ``(N, 3)`` means, with ``maps[f] = [linear[f] | offset[f]]`` (3x4): natively
    when the library is built (``native=True``), else numpy."""

    def __init__(self, weights: np.ndarray, mean: np.ndarray, native: bool = True) -> None:
        self.n_vertices, self.n_cols = weights.shape
        self._lib: ctypes.CDLL | None = None
        if native:
            try:
                self._lib = load_library()
            except NativeLibraryError as exc:
                _log.warning("dense reconstruction runs in numpy, about 3x slower: %s", exc)
        if self._lib is not None:
            self._block = self._lib.dhp_dense_block()
            self._weights = _blocked(weights, self._block)
            self._mean = _blocked(mean, self._block)
        else:
            self._block = 0
            self._weights = np.ascontiguousarray(weights, np.float32)
            self._mean = np.ascontiguousarray(mean, np.float32)

    @property
    def path(self) -> str:
        """Which code computes the product: ``"avx2+fma"``, ``"portable"`` (C) or ``"numpy"``."""
        return self._lib.dhp_dense_path().decode() if self._lib is not None else "numpy"

    def rows(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(len(indices), K)`` weights and ``(len(indices), 3)`` means of those vertices."""
        if self._lib is None:
            return self._weights[indices], self._mean[indices]
        block, lane = np.divmod(np.asarray(indices), self._block)
        return self._weights[block, :, lane], self._mean[block, :, lane]

    def __call__(self, rhs: Sequence[np.ndarray], maps: Sequence[np.ndarray],
                 indices: np.ndarray | None = None) -> list[np.ndarray]:
        """``(N, 3)`` float32 for each face (only the vertices at ``indices`` if given) from
        its ``(K, 3)`` right-hand side and 3x4 affine map ``[linear | offset]``."""
        if not rhs:
            return []
        affine = np.ascontiguousarray(np.stack(maps), np.float32)
        if self._lib is None:
            weights, mean = (self._weights, self._mean) if indices is None else \
                self.rows(indices)
            product = weights @ np.concatenate(rhs, axis=1).astype(np.float32)
            return [np.ascontiguousarray(product[:, 3 * k:3 * k + 3])
                    + (mean @ a[:, :3].T + a[:, 3]) for k, a in enumerate(affine)]
        right = np.ascontiguousarray(np.stack(rhs), np.float32)
        if right.shape[1:] != (self.n_cols, 3) or affine.shape != (len(right), 3, 4):
            raise ValueError(f"expected ({self.n_cols}, 3) right-hand sides and 3x4 maps, "
                             f"got {right.shape} and {affine.shape}")
        linear = np.ascontiguousarray(affine[:, :, :3])
        offset = np.ascontiguousarray(affine[:, :, 3])
        out = np.empty((len(right), self.n_vertices, 3), np.float32)
        status = self._lib.dhp_dense_product(
            self._weights.ctypes.data, self._mean.ctypes.data, self.n_vertices, self.n_cols,
            right.ctypes.data, linear.ctypes.data, offset.ctypes.data, len(right),
            out.ctypes.data)
        if status != 0:
            raise ValueError("the dense product refused its arguments")
        if indices is not None:  # gathering weight rows from blocks costs more than all rows
            return [o[indices] for o in out]
        return list(out)
