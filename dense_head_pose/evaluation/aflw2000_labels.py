"""AFLW2000-3D's labels read as the benchmark defines them: the images, their 68 points,
their pose (the labels' own rotation convention) and 3DDFA's crop boxes and yaw bins
(:mod:`.aflw2000` has the protocols)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DenseHeadPoseError

BENCHMARK_FILES = "AFLW2000-3D_3ddfa"


class EvaluationError(DenseHeadPoseError):
    """The data set is missing, incomplete or unreadable."""


@dataclass(frozen=True)
class Sample:
    """One labelled image."""

    name: str
    path: Path
    landmarks: np.ndarray
    """(68, 2) labelled points, pixels."""
    angles: np.ndarray
    """(3,) labelled yaw, pitch, roll, degrees (the labels' decomposition)."""
    rotation: np.ndarray
    """(3, 3) labelled rotation."""
    bin_yaw: float
    """|yaw| that bins the image (3DDFA's pose file, else the label's), degrees."""
    roi: np.ndarray
    """(4,) the benchmark's crop box (3DDFA's file, else the labels' landmark ROI)."""


def _loadmat(path: Path) -> dict[str, Any]:
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise EvaluationError("reading AFLW2000-3D's .mat labels needs scipy: pip install "
                              "'dense_head_pose[eval]'") from exc
    try:
        return loadmat(str(path))
    except Exception as exc:  # scipy raises many kinds on junk (MatReadError, IndexError...)
        raise EvaluationError(f"{path}: not a readable label file "
                              f"({type(exc).__name__}: {exc})") from None


def label_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """The labels' rotation from their angles (radians; see module)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("XYZ", [-pitch, -yaw, -roll]).as_matrix()


def label_angles(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees of a rotation in the labels' decomposition."""
    from scipy.spatial.transform import Rotation

    pitch, yaw, roll = -Rotation.from_matrix(rotation).as_euler("XYZ", degrees=True)
    return np.array([yaw, pitch, roll])


def camera_rotation(params: np.ndarray) -> np.ndarray:
    """The rotation of the regressor's 3x4 affine camera (3DDFA_V2's ``P2sRt``: its first
    two rows normalised, the third their cross product), made exactly orthonormal."""
    camera = np.asarray(params[:12], dtype=np.float64).reshape(3, 4)
    r1 = camera[0, :3] / np.linalg.norm(camera[0, :3])
    r2 = camera[1, :3] / np.linalg.norm(camera[1, :3])
    u, _, vt = np.linalg.svd(np.stack([r1, r2, np.cross(r1, r2)]))
    return u @ vt


def geodesic_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle of the rotation between ``a`` and ``b``, degrees."""
    cos = (np.trace(a.T @ b) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, float(cos)))))


def nme(predicted: np.ndarray, labelled: np.ndarray) -> float:
    """3DDFA's NME: mean point distance over sqrt(w * h) of the labels' box."""
    span = labelled.max(axis=0) - labelled.min(axis=0)
    return float(np.linalg.norm(predicted[:, :2] - labelled, axis=1).mean()
                 / math.sqrt(span[0] * span[1]))


def labels_crop(points: np.ndarray) -> np.ndarray:
    """3DDFA's crop box from labelled landmarks: their bounding square along the image axes,
    side times sqrt(2). What 3DDFA's files hold, for folders without them; the benchmark's
    rule, not the pipeline's (:func:`~..pipeline.alignment.roi_from_landmarks`)."""
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    centre = (lo + hi) / 2.0
    half = float(np.max(hi - lo)) / 2.0 * math.sqrt(2.0)
    return np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def load_aflw2000(directory: str | Path, benchmark_files: str | Path | None = None,
                  stride: int = 1) -> list[Sample]:
    """The labelled images of ``directory`` (``imageNNNNN.jpg`` + ``.mat``), sorted by name,
    every ``stride``-th. ``benchmark_files``: 3DDFA's files (default: ``AFLW2000-3D_3ddfa``
    beside ``directory``, used when present)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise EvaluationError(f"{directory} is not a directory of AFLW2000-3D images")
    names = sorted(p.name for p in directory.glob("image*.jpg")
                   if p.with_suffix(".mat").is_file())
    if not names:
        raise EvaluationError(f"{directory} holds no imageNNNNN.jpg with its .mat label")
    extra = Path(benchmark_files) if benchmark_files else directory.parent / BENCHMARK_FILES
    rois = yaws = None
    index: dict[str, int] = {}
    if (extra / "AFLW2000-3D_crop.list").is_file():
        order = _read_text(extra / "AFLW2000-3D_crop.list").split()
        index = {name: i for i, name in enumerate(order)}
        rois = _load_rows(extra / "AFLW2000-3D_crop.roi_box.npy", len(order), 4)
        yaws = _load_rows(extra / "AFLW2000-3D.pose.npy", len(order), None)
    elif benchmark_files:
        raise EvaluationError(f"{extra} does not hold 3DDFA's AFLW2000-3D_crop.list")
    samples = []
    for name in names[::stride]:
        label = directory / name.replace(".jpg", ".mat")
        mat = _loadmat(label)
        try:
            points = np.asarray(mat["pt3d_68"], np.float64)[:2].T
            pitch, yaw, roll = (float(v) for v in np.asarray(mat["Pose_Para"]).ravel()[:3])
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise EvaluationError(f"{label}: label without pt3d_68 / Pose_Para "
                                  f"({exc})") from None
        if points.shape != (68, 2) or not np.all(np.isfinite(points)) \
                or not all(math.isfinite(v) for v in (pitch, yaw, roll)):
            raise EvaluationError(f"{label}: pt3d_68 must hold 68 finite points and Pose_Para "
                                  f"finite angles (got {points.shape})")
        angles = np.degrees([yaw, pitch, roll])
        if rois is not None and yaws is not None and name in index:
            roi, bin_yaw = rois[index[name]].astype(np.float64), abs(float(yaws[index[name]]))
        else:
            roi, bin_yaw = labels_crop(points), abs(float(angles[0]))
        samples.append(Sample(name, directory / name, points, angles,
                              label_rotation(pitch, yaw, roll), bin_yaw, roi))
    return samples


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: cannot read it ({exc})") from None


def _load_rows(path: Path, rows: int, columns: int | None) -> np.ndarray:
    """One of 3DDFA's benchmark arrays: ``rows`` finite rows (of ``columns`` values)."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise EvaluationError(f"{path} is missing: 3DDFA's benchmark folder holds "
                              "AFLW2000-3D_crop.list with its .npy files") from None
    except (OSError, ValueError, EOFError) as exc:
        raise EvaluationError(f"{path}: not a numpy array file ({exc})") from None
    expected = (rows,) if columns is None else (rows, columns)
    if array.dtype.kind not in "iuf" or array.shape[:1] != (rows,) or (
            columns is not None and array.shape != expected) or not np.all(np.isfinite(array)):
        raise EvaluationError(f"{path} holds {array.shape} {array.dtype} values; expected "
                              f"{expected} finite numbers, one row per image of "
                              "AFLW2000-3D_crop.list")
    return array.reshape(rows, -1) if columns else array.reshape(rows)


#: The labels' axes (x right, y up, z towards the camera) from the camera optical frame.
