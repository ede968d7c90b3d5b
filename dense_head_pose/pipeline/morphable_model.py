"""The Basel Face Model: 68 sparse landmarks exactly, 38,365 dense vertices.

Sparse landmarks come from the 68-row restriction of the model's bases, so they are exact.
The pack's dense model is only the mean face (no dense bases). Its vertices are deformed by the
68 keypoints' shape + expression displacement, interpolated over the mesh by a 3D thin-plate
spline (polyharmonic kernel ``phi(r) = r`` plus an affine part). The spline is linear in the
displacements, so it reduces to one ``38365 x 68`` matrix computed once at load: per face the
dense reconstruction is one product (:class:`~dense_head_pose.pipeline.dense_product.DenseProduct`).
If the full 3DDFA_V2 model was imported (``dense-head-pose models import-bfm``,
:mod:`dense_head_pose.model_build.bfm_import`), its exact dense bases are used
instead, through the same product.

Model space: micrometres, x towards the subject's left, y up, z out of the face.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .dense_product import DenseProduct

N_SHAPE = 40
N_EXP = 10
N_LANDMARKS = 68
SELLION = 27  #: landmark index of the top of the nose bridge (the REP-155 face frame origin)
_TPS_REGULARISATION = 1e-6  # relative to the mean kernel value, for conditioning only


def _load_npz(path: Path, keys: dict[str, tuple[int | None, ...]]) -> dict[str, np.ndarray]:
    """Load ``path`` (no pickles) and check each key's shape; ``None`` matches any length."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.array(data[k]) for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path} is not a valid model file ({exc}); rebuild it with: "
                         "dense-head-pose models build") from exc
    for key, shape in keys.items():
        got = arrays[key].shape
        if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
            raise ModelError(f"{path}: array {key!r} has shape {got}, expected {shape}")
        if arrays[key].dtype.kind == "f" and not np.all(np.isfinite(arrays[key])):
            raise ModelError(f"{path}: array {key!r} holds non-finite values")
    return arrays


def thin_plate_weights(vertices: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """``(N, K)`` matrix mapping K keypoint displacements to N smoothly interpolated ones.

    Solves the 3D thin-plate (polyharmonic, ``phi(r) = r``) system with an affine term once for
    an identity right-hand side; rows at the keypoints reproduce them exactly.
    """
    k = len(keypoints)
    kp = keypoints.astype(np.float64)
    kernel = np.linalg.norm(kp[:, None] - kp[None], axis=-1)
    kernel += np.eye(k) * _TPS_REGULARISATION * kernel.mean()
    poly = np.concatenate([np.ones((k, 1)), kp], axis=1)
    system = np.zeros((k + 4, k + 4))
    system[:k, :k], system[:k, k:], system[k:, :k] = kernel, poly, poly.T
    coeffs = np.linalg.solve(system, np.concatenate([np.eye(k), np.zeros((4, k))]))
    v = vertices.astype(np.float64)
    dist = np.sqrt(np.maximum(
        (v * v).sum(1)[:, None] + (kp * kp).sum(1)[None] - 2.0 * v @ kp.T, 0.0))
    weights = dist @ coeffs[:k] + np.concatenate([np.ones((len(v), 1)), v], axis=1) @ coeffs[k:]
    return weights.astype(np.float32)


class MorphableModel:
    """Sparse and dense reconstruction of 3DMM parameters into model or image space."""

    def __init__(self, sparse_path: Path, dense_path: Path, full_path: Path | None = None) -> None:
        sparse = _load_npz(sparse_path, {"u_base": (204,), "w_shp_base": (204, N_SHAPE),
                                         "w_exp_base": (204, N_EXP)})
        dense = _load_npz(dense_path, {"vertices": (None, 3), "triangles": (None, 3),
                                       "keypoints": (N_LANDMARKS,)})
        self.mean68 = sparse["u_base"].reshape(N_LANDMARKS, 3).astype(np.float32)
        #: ``(204, 50)`` shape then expression bases, rows xyz-interleaved per landmark
        self.bases68 = np.concatenate([sparse["w_shp_base"], sparse["w_exp_base"]], axis=1)
        self.triangles = np.ascontiguousarray(dense["triangles"], dtype=np.int32)
        self.keypoints = dense["keypoints"].astype(np.int64)
        n_vertices = len(dense["vertices"])
        if self.triangles.min() < 0 or self.triangles.max() >= n_vertices:
            raise ModelError(f"{dense_path}: triangle indices out of range")
        if self.keypoints.min() < 0 or self.keypoints.max() >= n_vertices:
            raise ModelError(f"{dense_path}: keypoint indices out of range")
        self.exact_dense = full_path is not None and full_path.is_file()
        if self.exact_dense:
            assert full_path is not None
            full = _load_full_bfm(full_path)
            self.dense_mean = full["u"].astype(np.float32)
            self.triangles = np.ascontiguousarray(full["triangles"], dtype=np.int32)
            self.keypoints = full["keypoints"].astype(np.int64)
            # vertex i's offset is sum_j bases[3i + c, j] * coeff_j along axis c: as one weight
            # per (coefficient, axis) pair, whose right-hand side is coeff_j * linear[:, c]
            bases = np.concatenate([full["w_shp"], full["w_exp"]], 1).astype(np.float32)
            n = len(self.dense_mean)
            weights = bases.reshape(n, 3, N_SHAPE + N_EXP).transpose(0, 2, 1).reshape(n, -1)
        else:
            self.dense_mean = dense["vertices"].astype(np.float32)
            weights = thin_plate_weights(self.dense_mean, self.mean68)
        self._dense = DenseProduct(weights, self.dense_mean)

    @property
    def n_vertices(self) -> int:
        """Number of dense vertices (38,365 for the 3DDFA_V2 no-neck model)."""
        return len(self.dense_mean)

    def landmark_offsets(self, params: np.ndarray) -> np.ndarray:
        """``(68, 3)`` shape + expression displacement of the landmarks, model units."""
        return (self.bases68 @ params[12:62].astype(np.float32)).reshape(N_LANDMARKS, 3)

    def landmarks_model(self, params: np.ndarray) -> np.ndarray:
        """``(68, 3)`` landmarks in model space (micrometres)."""
        return self.mean68 + self.landmark_offsets(params)

    def dense_model(self, params: np.ndarray, indices: np.ndarray | None = None) -> np.ndarray:
        """``(N, 3)`` dense vertices in model space (micrometres); only ``indices`` if given."""
        identity = np.hstack([np.eye(3), np.zeros((3, 1))]).astype(np.float32)
        return self.dense_affine([params], [identity], indices)[0]

    def dense_affine(self, params: Sequence[np.ndarray], maps: Sequence[np.ndarray],
                     indices: np.ndarray | None = None) -> list[np.ndarray]:
        """Dense vertices of several faces, each through a 3x4 affine ``map`` (a camera:
        scaled rotation and translation), ``(N, 3)`` float32 each; only ``indices`` if given.

        The displacement is mapped before it is interpolated (68 rows, not 38365), and all
        faces share one pass over the weights."""
        linears = [np.asarray(m, np.float32)[:, :3] for m in maps]
        if self.exact_dense:
            rhs = [(p[12:62].astype(np.float32)[:, None, None] * lin.T[None]).reshape(-1, 3)
                   for p, lin in zip(params, linears)]
        else:
            rhs = [self.landmark_offsets(p) @ lin.T for p, lin in zip(params, linears)]
        return self._dense(rhs, maps, indices)

    @property
    def dense_path(self) -> str:
        """Which code computes dense vertices (see ``DenseProduct.path``)."""
        return self._dense.path

    @staticmethod
    def project(points: np.ndarray, camera: np.ndarray) -> np.ndarray:
        """Apply a 3x4 affine ``camera`` to ``(N, 3)`` model points; float32 ``(N, 3)``."""
        cam = camera.astype(np.float32)
        return points @ cam[:, :3].T + cam[:, 3]

    def landmarks(self, params: np.ndarray, camera: np.ndarray) -> np.ndarray:
        """``(68, 3)`` landmarks through the image camera (pixels, depth)."""
        return self.project(self.landmarks_model(params), camera)


def check_full_bfm(arrays: dict[str, np.ndarray], path: Path | str, fix: str) -> None:
    """:class:`ModelError` (naming ``path`` and ``fix``) unless the full BFM's arrays agree
    with each other: ``u`` (N, 3) and both bases 3N rows of 40 and 10 finite values, the
    triangles and the 68 keypoints vertex indices in [0, N). The import checks what it is
    about to write with it, the load what it reads: a pack the import wrote always loads."""
    u = arrays["u"]
    if u.ndim != 2 or u.shape[1] != 3 or len(u) == 0:
        raise ModelError(f"{path}: 'u' has shape {u.shape}, expected (N, 3); {fix}")
    n = len(u)
    for key, columns in (("w_shp", N_SHAPE), ("w_exp", N_EXP)):
        if arrays[key].shape != (3 * n, columns):
            raise ModelError(f"{path}: {key!r} has shape {arrays[key].shape}, expected "
                             f"({3 * n}, {columns}); {fix}")
    for key in ("u", "w_shp", "w_exp"):
        if arrays[key].dtype.kind != "f" or not np.all(np.isfinite(arrays[key])):
            raise ModelError(f"{path}: {key!r} must hold finite numbers; {fix}")
    for key, shape in (("triangles", (None, 3)), ("keypoints", (N_LANDMARKS,))):
        values = arrays[key]
        if values.ndim != len(shape) or any(s is not None and s != g
                                            for s, g in zip(shape, values.shape)):
            raise ModelError(f"{path}: {key!r} has shape {values.shape}; {fix}")
        if values.dtype.kind not in "iu" or values.size == 0 or values.min() < 0 \
                or values.max() >= n:
            raise ModelError(f"{path}: {key!r} must be vertex indices in [0, {n}); {fix}")


def _load_full_bfm(path: Path) -> dict[str, np.ndarray]:
    """The imported full BFM, checked like the fetched pack: the hash recorded when it was
    imported (:func:`~dense_head_pose.model_pack.require_recorded`), then its arrays
    (:func:`check_full_bfm`)."""
    from ..model_pack import LOCAL_FILES, require_recorded

    require_recorded(path)
    fix = f"re-import it: {LOCAL_FILES[path.name]}"
    full = _load_npz(path, {"u": (None, 3), "w_shp": (None, N_SHAPE), "w_exp": (None, N_EXP),
                            "triangles": (None, 3), "keypoints": (N_LANDMARKS,)})
    check_full_bfm(full, path, fix)
    return full
