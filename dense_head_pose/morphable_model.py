"""The Basel Face Model: 68 sparse landmarks exactly, 38,365 dense vertices.

Sparse landmarks come from the 68-row restriction of the model's bases, so they are exact.
The pack's dense model is only the mean face (no dense bases). Its vertices are deformed by the
68 keypoints' shape + expression displacement, interpolated over the mesh by a 3D thin-plate
spline (polyharmonic kernel ``phi(r) = r`` plus an affine part). The spline is linear in the
displacements, so it reduces to one ``38365 x 68`` matrix computed once at load: per face the
dense reconstruction is one product (:class:`~dense_head_pose.dense_product.DenseProduct`).
If the full 3DDFA_V2 model was imported (``dense-head-pose models import-bfm``), its exact
dense bases are used instead, through the same product.

Model space: micrometres, x towards the subject's left, y up, z out of the face.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from .dense_product import DenseProduct
from .errors import ModelError

N_SHAPE = 40
N_EXP = 10
N_LANDMARKS = 68
SELLION = 27  #: landmark index of the top of the nose bridge (the REP-155 face frame origin)
FULL_BFM_NAME = "bfm_dense_full.npz"
FULL_BFM_HASH_NAME = "bfm_dense_full.npz.sha256"  #: written by import, checked at load
MAX_PICKLE_BYTES = 1 << 30  #: a full BFM pickle is tens of MB
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


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_full_bfm(path: Path) -> dict[str, np.ndarray]:
    """The imported full BFM, checked like the fetched pack: the hash recorded when it was
    imported, array shapes that agree with each other, indices within range."""
    fix = "re-import it: dense-head-pose models import-bfm bfm_noneck_v3.pkl"
    hash_path = path.with_name(FULL_BFM_HASH_NAME)
    try:
        recorded = hash_path.read_text(encoding="ascii").split()[0]
        actual = _file_sha256(path)
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: its recorded hash {hash_path} is missing or unreadable "
                         f"({exc}); {fix}") from exc
    if actual != recorded:
        raise ModelError(f"{path} changed since it was imported (SHA-256 {actual[:12]}..., "
                         f"recorded {recorded[:12]}...); {fix}")
    full = _load_npz(path, {"u": (None, 3), "w_shp": (None, N_SHAPE), "w_exp": (None, N_EXP),
                            "triangles": (None, 3), "keypoints": (N_LANDMARKS,)})
    n = len(full["u"])
    for key in ("w_shp", "w_exp"):
        if full[key].shape[0] != 3 * n:
            raise ModelError(f"{path}: {key!r} has {full[key].shape[0]} rows for {n} vertices "
                             f"(expected {3 * n}); {fix}")
    for key in ("triangles", "keypoints"):
        values = full[key]
        if values.dtype.kind not in "iu" or values.size == 0 or values.min() < 0 \
                or values.max() >= n:
            raise ModelError(f"{path}: {key!r} must be vertex indices in [0, {n}); {fix}")
    return full


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that admits numpy arrays, dtypes and plain containers, nothing callable else.

    A pickle can run arbitrary code when loaded; restricting the globals it may reference
    keeps a malicious file from doing more than failing to load.
    """

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    })

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing pickled global {module}.{name}")


def import_full_bfm(pkl_path: Path, dest_dir: Path, dense_path: Path) -> Path:
    """Convert 3DDFA_V2's ``bfm_noneck_v3.pkl`` to ``bfm_dense_full.npz`` in ``dest_dir``.

    Expected keys: ``u`` (3N or 3Nx1), ``w_shp`` (3N x >=40), ``w_exp`` (3N x >=10), ``tri``
    (Mx3 or 3xM) and ``keypoints`` (204 indices into the flattened xyz vector). When the
    vertex count matches the pack's dense mesh, the pack's triangles (3DDFA_V2's rebuilt
    ``tri.pkl``) are kept, as 3DDFA_V2 itself does for this model.
    """
    try:
        size = pkl_path.stat().st_size
        if not pkl_path.is_file() or size > MAX_PICKLE_BYTES:
            raise ModelError(f"{pkl_path}: not a regular file of at most {MAX_PICKLE_BYTES} "
                             "bytes")
        with pkl_path.open("rb") as fh:
            data = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError,
            TypeError, MemoryError, RecursionError) as exc:
        raise ModelError(f"{pkl_path}: cannot read as a BFM pickle ({exc!r})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{pkl_path}: expected a dict of arrays, got {type(data).__name__}")
    missing = {"u", "w_shp", "w_exp", "tri", "keypoints"} - set(data)
    if missing:
        raise ModelError(f"{pkl_path}: missing keys {sorted(missing)}")
    # numpy arrays only: nested lists that share their items (a few hundred bytes of pickle)
    # would expand into billions of elements in np.asarray
    for key in ("u", "w_shp", "w_exp", "tri", "keypoints"):
        if not isinstance(data[key], np.ndarray) or data[key].dtype.kind not in "iuf":
            raise ModelError(f"{pkl_path}: {key!r} is a {type(data[key]).__name__}, expected a "
                             "numeric numpy array")
    u = np.asarray(data["u"], np.float32).reshape(-1)
    if u.size % 3:
        raise ModelError(f"{pkl_path}: 'u' has {u.size} values, not a multiple of 3")
    n = u.size // 3
    w_shp = np.asarray(data["w_shp"], np.float32)
    w_exp = np.asarray(data["w_exp"], np.float32)
    if w_shp.shape[0] != 3 * n or w_shp.shape[1] < N_SHAPE:
        raise ModelError(f"{pkl_path}: 'w_shp' has shape {w_shp.shape}, expected ({3 * n}, >=40)")
    if w_exp.shape[0] != 3 * n or w_exp.shape[1] < N_EXP:
        raise ModelError(f"{pkl_path}: 'w_exp' has shape {w_exp.shape}, expected ({3 * n}, >=10)")
    flat_kp = np.asarray(data["keypoints"]).reshape(-1).astype(np.int64)
    xyz = flat_kp.reshape(-1, 3) if flat_kp.size == 3 * N_LANDMARKS else None
    if xyz is None or np.any(xyz[:, 0] % 3) or np.any(xyz - xyz[:, :1] != np.arange(3)):
        raise ModelError(f"{pkl_path}: 'keypoints' must be 204 xyz indices of 68 vertices")
    keypoints = flat_kp[0::3] // 3
    if keypoints.max() >= n:
        raise ModelError(f"{pkl_path}: keypoint index out of range")
    tri = np.asarray(data["tri"]).astype(np.int64)
    if tri.ndim != 2 or 3 not in tri.shape:
        raise ModelError(f"{pkl_path}: 'tri' has shape {tri.shape}, expected (M, 3) or (3, M)")
    tri = tri if tri.shape[1] == 3 else tri.T
    with np.load(dense_path, allow_pickle=False) as pack:
        if len(pack["vertices"]) == n:
            tri = pack["triangles"].astype(np.int64)
    if tri.min() < 0 or tri.max() >= n:
        raise ModelError(f"{pkl_path}: triangle index out of range")
    values = [u, w_shp, w_exp]
    if not all(np.all(np.isfinite(a)) for a in values):
        raise ModelError(f"{pkl_path}: non-finite values in the bases")
    out = dest_dir / FULL_BFM_NAME
    tmp = dest_dir / (FULL_BFM_NAME + ".partial.npz")
    np.savez(tmp, u=u.reshape(n, 3), w_shp=w_shp[:, :N_SHAPE], w_exp=w_exp[:, :N_EXP],
             triangles=tri.astype(np.int32), keypoints=keypoints.astype(np.int32))
    (dest_dir / FULL_BFM_HASH_NAME).write_text(f"{_file_sha256(tmp)}  {FULL_BFM_NAME}\n",
                                               encoding="ascii")
    tmp.replace(out)
    return out
