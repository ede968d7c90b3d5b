"""Result types: one :class:`Face` per detected face, one :class:`FrameResult` per image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .morphable_model import MorphableModel
from .pose import HEAD_IN_MODEL, MICROMETRE, HeadPose


@dataclass(eq=False)
class Face:
    """One face: detection, 3DMM parameters, pose and landmarks.

    Image quantities are in pixels of the input image; ``landmarks[:, 2]`` and the dense
    vertices' depth are in the same pixel scale, relative to the head's model origin (about
    the centre of the head), growing towards the camera. Dense vertices are computed on first
    access (or eagerly with ``dense=True``), so callers that never need them never pay.
    """

    box: np.ndarray
    """(x1, y1, x2, y2) detector box, pixels."""
    score: float
    """Detector confidence in [0, 1]."""
    roi: np.ndarray
    """(x1, y1, x2, y2) square region the regressor saw, pixels (may extend past the image)."""
    params: np.ndarray
    """The 62 3DMM parameters: 3x4 crop camera, 40 shape, 10 expression coefficients."""
    camera: np.ndarray
    """3x4 affine image camera: model micrometres -> (u, v, depth) pixels."""
    yaw: float
    pitch: float
    roll: float
    """Degrees; convention in :mod:`dense_head_pose.pipeline.pose`."""
    pose: HeadPose
    """Head frame (REP-155) in the camera optical frame, metres."""
    landmarks: np.ndarray
    """(68, 3) float32: x, y pixels and relative depth."""
    id: int | None = None
    """Tracking identity, stable across frames when a tracker assigns one."""
    _model: MorphableModel | None = field(default=None, repr=False)
    _model_vertices: np.ndarray | None = field(default=None, repr=False)
    _vertices: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape_coefficients(self) -> np.ndarray:
        """The 40 identity (shape) coefficients."""
        return self.params[12:52]

    @property
    def expression_coefficients(self) -> np.ndarray:
        """The 10 expression coefficients."""
        return self.params[52:62]

    def model_vertices(self) -> np.ndarray:
        """(38365, 3) float32 dense vertices in model space, micrometres (cached)."""
        if self._model_vertices is None:
            self._model_vertices = self._require_model().dense_model(self.params)
        return self._model_vertices

    @property
    def vertices(self) -> np.ndarray:
        """(38365, 3) float32 dense vertices, image pixels and relative depth (cached;
        :func:`compute_vertices` does several faces in one pass)."""
        if self._vertices is None:
            compute_vertices([self])
        assert self._vertices is not None
        return self._vertices

    @property
    def has_vertices(self) -> bool:
        """Whether the dense vertices were already computed."""
        return self._vertices is not None

    def vertices_in_camera(self, indices: np.ndarray | None = None) -> np.ndarray:
        """(N, 3) float32 dense vertices (or those at ``indices``) in the camera optical
        frame, metres."""
        model = self._require_model()
        linear, offset = self._metric_map()
        if self._model_vertices is not None:
            points = self._model_vertices if indices is None else self._model_vertices[indices]
            return points @ linear.T + offset
        return model.dense_affine([self.params], [np.hstack([linear, offset[:, None]])],
                                  indices)[0]

    def _require_model(self) -> MorphableModel:
        if self._model is None:
            raise RuntimeError("this Face carries no model to reconstruct dense vertices")
        return self._model

    def _metric_map(self) -> tuple[np.ndarray, np.ndarray]:
        """Model micrometres -> camera metres as ``p @ linear.T + offset`` (float32)."""
        model = self._require_model()
        sellion = model.landmarks_model(self.params)[27].astype(np.float64)
        linear = self.pose.rotation @ HEAD_IN_MODEL.T * MICROMETRE
        offset = self.pose.translation - linear @ sellion
        return linear.astype(np.float32), offset.astype(np.float32)

    def landmarks_in_camera(self) -> np.ndarray:
        """(68, 3) float32 landmarks in the camera optical frame, metres."""
        assert self._model is not None
        return self._metric(self._model.landmarks_model(self.params))

    def _metric(self, model_points: np.ndarray) -> np.ndarray:
        linear, offset = self._metric_map()
        return model_points @ linear.T + offset

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary with the CLI's documented keys."""
        return {
            "id": self.id,
            "bbox": [round(float(v), 2) for v in self.box],
            "score": round(self.score, 4),
            "yaw": round(self.yaw, 3),
            "pitch": round(self.pitch, 3),
            "roll": round(self.roll, 3),
            "translation_m": [round(float(v), 5) for v in self.pose.translation],
            "rotation_quat_xyzw": [round(float(v), 6) for v in self.pose.quaternion_xyzw],
            "landmarks": [[round(float(v), 2) for v in p] for p in self.landmarks],
            "params": [float(v) for v in self.params],
        }


def compute_vertices(faces: Sequence[Face]) -> None:
    """Compute the image-space dense vertices of every face that has none yet, all faces of
    a model in one pass over its interpolation weights (see ``MorphableModel.dense_affine``)."""
    pending = [f for f in faces if f._vertices is None]
    by_model: dict[int, list[Face]] = {}
    for face in pending:
        by_model.setdefault(id(face._require_model()), []).append(face)
    for group in by_model.values():
        model = group[0]._require_model()
        outputs = model.dense_affine([f.params for f in group], [f.camera for f in group])
        for face, out in zip(group, outputs):
            face._vertices = out


@dataclass
class FrameResult:
    """Faces found in one image, largest first, and the time each stage took (ms)."""

    faces: list[Face]
    width: int
    height: int
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self, frame: int | str) -> dict[str, Any]:
        """JSON-ready object for one frame (``--json`` output line)."""
        return {"frame": frame, "width": self.width, "height": self.height,
                "faces": [f.to_dict() for f in self.faces]}
