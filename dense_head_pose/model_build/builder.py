"""``models build``: the model pack, made by this project from the upstream public files.

The upstream files (``models/upstream.json``: repository, commit, path, size, SHA-256 and
licence of each) are taken from a directory or downloaded from their pinned commits
(``https://raw.githubusercontent.com/<repository>/<commit>/<path>``), verified before use,
and turned into the pack:

* ``face_detector_rfb320.tflite`` and ``face_detector_rfb640.tflite``: the RFB detector
  trained at 320x240 and at 640x480, converted from ``version-RFB-320.pth`` and
  ``version-RFB-640.pth`` (:mod:`dense_head_pose.model_build.detector_conversion`);
* ``bfm_sparse68.npz``: the arrays of ``bfm_68_landmarks.npz``, checked and rewritten;
* ``bfm_dense_mean.npz``: 3DDFA's mean face ``u_shp + u_exp`` (53,215 vertices) indexed by
  3DDFA_V2's ``indices.npy`` (38,365), its triangles ``tri.pkl``, and the 68 landmarks
  ``keypoints_sim.npy`` (xyz indices into the full mesh) as indices among those vertices;
* ``face_3dmm_mb05.tflite``: the regressor converted from ``mb05_120x120.pth`` and
  ``param_mean_std_62d_120x120.pkl`` (:mod:`dense_head_pose.model_build.regressor_conversion`).

Deterministic: arrays are written into ``.npz`` files with fixed headers and zip entries,
and the flatbuffer is packed in a fixed order, so every build gives the same bytes, which
``models/manifest.json`` pins and ``models check`` verifies. Every file goes through a
temporary file and is renamed once complete (and, for the pack, once its SHA-256 matches),
so an interrupted build leaves nothing that looks complete.

The int8 regressor (``--precision int8``) is :mod:`dense_head_pose.model_build.quantization`.
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import urllib.parse
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import model_pack
from ..errors import ModelError
from .safe_pickle import load_numpy_pickle

UPSTREAM_NAME = "upstream.json"
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"
#: The ``.npy`` header version written (1.0: every numpy reads it).
_NPY_VERSION = (1, 0)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class UpstreamFile:
    """One upstream file: where it is published and what it must be."""

    name: str
    repository: str
    commit: str
    path: str
    bytes: int
    sha256: str
    licence: str

    @property
    def url(self) -> str:
        return RAW_URL.format(repository=self.repository, commit=self.commit,
                              path=urllib.parse.quote(self.path))


def upstream_manifest() -> list[UpstreamFile]:
    """The pinned upstream files (``models/upstream.json``, installed beside the pack
    manifest)."""
    path = model_pack.manifest_path().with_name(UPSTREAM_NAME)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [UpstreamFile(name=f["name"], repository=f["repository"], commit=f["commit"],
                             path=f["path"], bytes=int(f["bytes"]),
                             sha256=f["sha256"].lower(), licence=f["licence"])
                for f in data["files"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"the upstream manifest {path} is missing or unreadable: {exc}") \
            from exc


def obtain_upstream(work: Path, source_dir: Path | None, base_url: str | None,
                    log: Callable[[str], None], timeout: float) -> dict[str, Path]:
    """Every upstream file in ``work``, verified: copied from ``source_dir``, downloaded from
    ``base_url`` (a mirror holding them by name), or from their pinned GitHub URLs."""
    files = upstream_manifest()
    model_pack.prepare_dest(work, [f.name for f in files], log)
    out = {}
    for entry in files:
        target = work / entry.name
        if model_pack.check_file(target, entry) is None:  # type: ignore[arg-type]
            out[entry.name] = target
            continue
        if source_dir is not None:
            where = str(source_dir / entry.name)
            if not (source_dir / entry.name).exists():
                raise ModelError(f"{where} does not exist (the upstream file {entry.path} of "
                                 f"{entry.repository})")
        else:
            where = (urllib.parse.urljoin(base_url.rstrip("/") + "/",
                                          urllib.parse.quote(entry.name))
                     if base_url else entry.url)
        try:
            model_pack.write_verified(target, _writer(where, entry, source_dir is not None,
                                                      timeout),
                                      entry)  # type: ignore[arg-type]
        except ModelError as exc:
            raise ModelError(f"upstream file {entry.name} from {where}: {exc}") from exc
        log(f"verified {entry.name} ({entry.repository}@{entry.commit[:7]})")
        out[entry.name] = target
    return out


def _writer(where: str, entry: UpstreamFile, is_file: bool, timeout: float
            ) -> Callable[[Path], None]:
    """Fills a temporary file from a local file (its size checked first) or a URL."""
    def write(tmp: Path) -> None:
        if is_file:
            model_pack.copy_checked(Path(where), tmp, entry)
        else:
            model_pack.download(where, tmp, entry.bytes, timeout)
    return write


# ------------------------------------------------------------------------ deterministic npz
def _npy_bytes(array: np.ndarray) -> bytes:
    """``.npy`` version 1.0 of a C-ordered little-endian array, header written here so that
    no numpy version's formatting changes the bytes."""
    array = np.ascontiguousarray(array)
    descr = array.dtype.newbyteorder("<").str if array.dtype.itemsize > 1 else array.dtype.str
    shape = (f"({array.shape[0]},)" if array.ndim == 1
             else "(" + ", ".join(str(n) for n in array.shape) + ")")
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    total = 10 + len(header) + 1
    header += " " * ((64 - total % 64) % 64) + "\n"
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return b"\x93NUMPY" + bytes(_NPY_VERSION) + struct.pack("<H", len(header)) + \
        header.encode("latin1") + data


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed ``.npz`` of ``arrays`` (in the given order), byte-for-byte the same
    on every machine."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, _npy_bytes(array))
    return buffer.getvalue()


# --------------------------------------------------------------------------- the pack files
def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a numpy array file ({exc})") from exc


def sparse_model(upstream: dict[str, Path]) -> bytes:
    """``bfm_sparse68.npz`` from ``bfm_68_landmarks.npz``."""
    path = upstream["bfm_68_landmarks.npz"]
    shapes = {"u_base": (204,), "w_shp_base": (204, 40), "w_exp_base": (204, 10)}
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k], np.float32) for k in shapes}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: not the 68-landmark BFM ({exc})") from exc
    for key, shape in shapes.items():
        if arrays[key].shape != shape or not np.all(np.isfinite(arrays[key])):
            raise ModelError(f"{path}: {key} has shape {arrays[key].shape}, expected {shape}")
    return npz_bytes(arrays)


def dense_model(upstream: dict[str, Path]) -> bytes:
    """``bfm_dense_mean.npz``: vertices, triangles, keypoints (see module)."""
    u_shp, u_exp = _load_npy(upstream["u_shp.npy"]), _load_npy(upstream["u_exp.npy"])
    indices = _load_npy(upstream["indices.npy"]).reshape(-1).astype(np.int64)
    keypoints = _load_npy(upstream["keypoints_sim.npy"]).reshape(-1).astype(np.int64)
    triangles = load_numpy_pickle(upstream["tri.pkl"])
    if u_shp.shape != u_exp.shape or u_shp.size % 3:
        raise ModelError("u_shp.npy and u_exp.npy must be the same 3N values")
    mean = (u_shp.astype(np.float64) + u_exp).reshape(-1, 3)
    if indices.min() < 0 or indices.max() >= len(mean) or len(np.unique(indices)) != len(indices):
        raise ModelError("indices.npy must index distinct vertices of the full mesh")
    vertices = mean[indices].astype(np.float32)
    triangles = np.asarray(triangles)
    if triangles.ndim != 2 or 3 not in triangles.shape or triangles.dtype.kind not in "iu":
        raise ModelError(f"tri.pkl holds {triangles.shape} {triangles.dtype}, expected 3 x M "
                         "vertex indices")
    triangles = (triangles.T if triangles.shape[0] == 3 else triangles).astype(np.int32)
    if triangles.min() < 0 or triangles.max() >= len(vertices):
        raise ModelError("tri.pkl indexes vertices that indices.npy does not keep")
    if keypoints.size != 204 or np.any(keypoints.reshape(-1, 3) % 3 != np.arange(3)):
        raise ModelError("keypoints_sim.npy must be the 204 x, y, z indices of 68 vertices")
    position = {int(v): i for i, v in enumerate(indices)}
    full = keypoints.reshape(-1, 3)[:, 0] // 3
    if any(int(v) not in position for v in full):
        raise ModelError("a landmark of keypoints_sim.npy is not among the kept vertices")
    landmarks = np.array([position[int(v)] for v in full], np.int32)
    return npz_bytes({"vertices": vertices, "triangles": np.ascontiguousarray(triangles),
                      "keypoints": landmarks})


def regressor(upstream: dict[str, Path]) -> bytes:
    """``face_3dmm_mb05.tflite`` (:mod:`dense_head_pose.model_build.regressor_conversion`)."""
    from .regressor_conversion import convert

    return convert(upstream["mb05_120x120.pth"], upstream["param_mean_std_62d_120x120.pkl"])


def detector(trained_at: int) -> Callable[[dict[str, Path]], bytes]:
    """The builder of ``face_detector_rfb<trained_at>.tflite``
    (:mod:`dense_head_pose.model_build.detector_conversion`)."""
    def build(upstream: dict[str, Path]) -> bytes:
        from .detector_conversion import convert

        return convert(upstream[f"version-RFB-{trained_at}.pth"],
                       f"dense_head_pose: Ultra-Light RFB face detector trained at "
                       f"{trained_at}x{trained_at * 3 // 4} (MIT), converted by models build")
    return build


BUILDERS: dict[str, Callable[[dict[str, Path]], bytes]] = {
    "face_detector_rfb320.tflite": detector(320),
    "face_detector_rfb640.tflite": detector(640),
    "face_3dmm_mb05.tflite": regressor,
    "bfm_sparse68.npz": sparse_model,
    "bfm_dense_mean.npz": dense_model,
}


def build(dest: Path, source_dir: Path | None = None, base_url: str | None = None,
          log: Callable[[str], None] = print, timeout: float = model_pack.DOWNLOAD_TIMEOUT_S,
          keep_upstream: Path | None = None,
          calibration: list[str] | None = None) -> list[Path]:
    """Make the pack in ``dest`` from the upstream files (see module); each file is
    verified against the pack manifest before it is put in place. ``keep_upstream``: keep
    the verified upstream files there (else a temporary directory). ``calibration``: also
    the int8 regressor, calibrated on the faces of these videos, images or folders."""
    entries = {e.name: e for e in model_pack.load_manifest()}
    missing = set(entries) - set(BUILDERS)
    if missing:
        raise ModelError(f"the pack manifest lists files no builder makes: {sorted(missing)}")
    model_pack.prepare_dest(dest, entries, log)
    with tempfile.TemporaryDirectory(prefix="dense_head_pose_upstream_") as scratch:
        work = keep_upstream or Path(scratch)
        upstream = obtain_upstream(work, source_dir, base_url, log, timeout)
        written = []
        for name, entry in entries.items():
            target = dest / name
            if model_pack.check_file(target, entry) is None:
                log(f"ok       {target}")
                written.append(target)
                continue
            data = BUILDERS[name](upstream)
            model_pack.write_verified(target, lambda tmp, d=data: tmp.write_bytes(d), entry)
            log(f"built    {target}")
            written.append(target)
    model_pack.copy_manifest(dest)
    if calibration:
        written.append(build_int8(dest, calibration, log))
    return written


def build_int8(dest: Path, calibration: list[str], log: Callable[[str], None] = print) -> Path:
    """The int8 regressor beside the float pack in ``dest`` (:mod:`.quantization`). Not
    pinned by the manifest: its bytes depend on the calibration images."""
    from ..pipeline.estimator import HeadPoseEstimator
    from .quantization import INT8_NAME, calibration_crops, calibration_frames, quantize

    estimator = HeadPoseEstimator.from_model_dir(dest, num_threads=1, mirror=False)
    crops = calibration_crops(estimator, calibration_frames(calibration))
    data = quantize(dest / "face_3dmm_mb05.tflite", crops, log)
    target = dest / INT8_NAME
    model_pack.write_with_hash(target, lambda tmp: tmp.write_bytes(data))
    log(f"built    {target} (int8, calibrated on {len(crops)} crops)")
    return target


def built_bytes(source_dir: Path) -> dict[str, bytes]:
    """The pack's files as a build from ``source_dir`` makes them (nothing written): for
    checking determinism and for regenerating the manifest's hashes."""
    files = {f.name: source_dir / f.name for f in upstream_manifest()}
    for entry in upstream_manifest():
        problem = model_pack.check_file(files[entry.name], entry)  # type: ignore[arg-type]
        if problem:
            raise ModelError(f"{files[entry.name]}: {problem}")
    return {name: make(files) for name, make in BUILDERS.items()}
