"""``models import-bfm``: 3DDFA_V2's full Basel Face Model, once, into the pack.

3DDFA_V2 ships the full model as ``bfm_noneck_v3.pkl``, a pickle: it is read by the
restricted unpickler of :mod:`dense_head_pose.model_build.safe_pickle` (numpy arrays only: anything
else is refused, no code in the file runs), converted, checked with the very check the load
applies (:func:`~dense_head_pose.pipeline.morphable_model.check_full_bfm`), and only then written,
with its SHA-256 recorded beside it (:func:`~dense_head_pose.model_pack.write_with_hash`).
Whatever is wrong with the input, nothing is written; an interrupted import leaves a pack
that the same command repairs.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..model_pack import FULL_BFM, write_with_hash
from ..pipeline.morphable_model import N_EXP, N_LANDMARKS, N_SHAPE, check_full_bfm
from .safe_pickle import MAX_PICKLE_BYTES, load_numpy_pickle

_KEYS = ("u", "w_shp", "w_exp", "tri", "keypoints")


def import_full_bfm(pkl_path: Path, dest_dir: Path, dense_path: Path) -> Path:
    """Convert 3DDFA_V2's ``bfm_noneck_v3.pkl`` to ``bfm_dense_full.npz`` in ``dest_dir``.

    Expected keys: ``u`` (3N or 3Nx1), ``w_shp`` (3N x >=40), ``w_exp`` (3N x >=10), ``tri``
    (Mx3 or 3xM) and ``keypoints`` (204 indices into the flattened xyz vector). When the
    vertex count matches the pack's dense mesh, the pack's triangles (3DDFA_V2's rebuilt
    ``tri.pkl``) are kept, as 3DDFA_V2 itself does for this model.
    """
    arrays = convert(load_numpy_pickle(pkl_path, MAX_PICKLE_BYTES), pkl_path, dense_path)
    check_full_bfm(arrays, pkl_path, "it is not 3DDFA_V2's bfm_noneck_v3.pkl")
    out = dest_dir / FULL_BFM
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_with_hash(out, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    return out


def convert(data: object, pkl_path: Path, dense_path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``bfm_dense_full.npz`` from the pickle's object; :class:`ModelError`
    for anything that is not the full model."""
    if not isinstance(data, dict):
        raise ModelError(f"{pkl_path}: expected a dict of arrays, got {type(data).__name__}")
    missing = set(_KEYS) - set(data)
    if missing:
        raise ModelError(f"{pkl_path}: missing keys {sorted(missing)}")
    # numpy arrays only: nested lists that share their items (a few hundred bytes of pickle)
    # would expand into billions of elements in np.asarray
    for key in _KEYS:
        if not isinstance(data[key], np.ndarray) or data[key].dtype.kind not in "iuf":
            raise ModelError(f"{pkl_path}: {key!r} is a {type(data[key]).__name__}, expected a "
                             "numeric numpy array")
    u = np.asarray(data["u"], np.float32).reshape(-1)
    if u.size % 3 or u.size == 0:
        raise ModelError(f"{pkl_path}: 'u' has {u.size} values, not a positive multiple of 3")
    n = u.size // 3
    bases = {}
    for key, columns in (("w_shp", N_SHAPE), ("w_exp", N_EXP)):
        value = data[key]
        if value.ndim != 2 or value.shape[0] != 3 * n or value.shape[1] < columns:
            raise ModelError(f"{pkl_path}: {key!r} has shape {value.shape}, expected "
                             f"({3 * n}, >={columns})")
        bases[key] = np.asarray(value[:, :columns], np.float32)
    keypoints = _keypoints(data["keypoints"], n, pkl_path)
    tri = _triangles(data["tri"], n, pkl_path)
    try:
        with np.load(dense_path, allow_pickle=False) as pack:
            if len(pack["vertices"]) == n:
                tri = pack["triangles"].astype(np.int32)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{dense_path}: cannot read the pack's dense mesh ({exc}); "
                         "dense-head-pose models build") from None
    return {"u": u.reshape(n, 3), "w_shp": bases["w_shp"], "w_exp": bases["w_exp"],
            "triangles": tri, "keypoints": keypoints}


def _integers(values: np.ndarray, what: str, pkl_path: Path) -> np.ndarray:
    """``values`` as int64 if every one is a finite whole number that fits; else refused
    (a cast would wrap an overflowing value into a valid-looking index)."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype.kind == "f" and not (np.all(np.isfinite(flat))
                                       and np.all(flat == np.round(flat))):
        raise ModelError(f"{pkl_path}: {what} must be whole numbers")
    if flat.size and (flat.min() < -(2**62) or flat.max() > 2**62):
        raise ModelError(f"{pkl_path}: {what} out of range")
    return flat.astype(np.int64)


def _keypoints(values: np.ndarray, n: int, pkl_path: Path) -> np.ndarray:
    flat = _integers(values, "'keypoints'", pkl_path)
    xyz = flat.reshape(-1, 3) if flat.size == 3 * N_LANDMARKS else None
    if xyz is None or np.any(xyz[:, 0] % 3) or np.any(xyz - xyz[:, :1] != np.arange(3)):
        raise ModelError(f"{pkl_path}: 'keypoints' must be 204 xyz indices of 68 vertices")
    keypoints = xyz[:, 0] // 3
    if keypoints.min() < 0 or keypoints.max() >= n:
        raise ModelError(f"{pkl_path}: 'keypoints' index out of range (vertices 0..{n - 1})")
    return keypoints.astype(np.int32)


def _triangles(values: np.ndarray, n: int, pkl_path: Path) -> np.ndarray:
    if values.ndim != 2 or 3 not in values.shape:
        raise ModelError(f"{pkl_path}: 'tri' has shape {values.shape}, expected (M, 3) or "
                         "(3, M)")
    tri = _integers(values, "'tri'", pkl_path).reshape(values.shape)
    tri = tri if tri.shape[1] == 3 else tri.T
    if tri.min() < 0 or tri.max() >= n:
        raise ModelError(f"{pkl_path}: triangle index out of range (vertices 0..{n - 1})")
    return np.ascontiguousarray(tri, dtype=np.int32)
