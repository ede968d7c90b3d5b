"""Plain OpenCV overlays: sparse landmarks, dense points, a pose box and axes.

The lit mesh overlay is the native renderer's job (:mod:`.render`); these are the cheap
views that need nothing but OpenCV."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np

from .pose import HEAD_IN_MODEL, MICROMETRE
from .results import Face

#: Index ranges of the 68-point outline groups; closed groups join their ends.
LANDMARK_GROUPS: tuple[tuple[int, int, bool], ...] = (
    (0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False),
    (36, 42, True), (42, 48, True), (48, 60, True), (60, 68, True),
)
DRAW_MODES = ("sparse", "dense", "pose")
_GREEN, _RED, _BLUE, _WHITE = (0, 255, 0), (0, 0, 255), (255, 0, 0), (255, 255, 255)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def _thickness(image: np.ndarray) -> int:
    return max(1, round(max(image.shape[:2]) / 640))


def draw_sparse(image: np.ndarray, face: Face) -> None:
    """The 68 landmarks as dots joined into the face outline groups."""
    t = _thickness(image)
    pts = np.round(face.landmarks[:, :2]).astype(np.int32)
    for start, end, closed in LANDMARK_GROUPS:
        cv2.polylines(image, [pts[start:end]], closed, _GREEN, t, cv2.LINE_AA)
    for p in pts:
        cv2.circle(image, (int(p[0]), int(p[1])), t + 1, _WHITE, -1, cv2.LINE_AA)


def draw_dense(image: np.ndarray, face: Face, step: int = 6) -> None:
    """Every ``step``-th dense vertex as a pixel dot (the seed's dense view)."""
    pts = np.round(face.vertices[::step, :2]).astype(np.int64)
    h, w = image.shape[:2]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    pts = pts[inside]
    image[pts[:, 1], pts[:, 0]] = _GREEN


#: Corners of a head-sized box in the head frame (metres from the sellion: x forward,
#: y left, z up), from the nose tip to behind the ears and from the chin to above the brow.
_HEAD_BOX = np.array([[x, y, z] for x in (0.03, -0.17) for y in (0.08, -0.08)
                      for z in (0.08, -0.13)])


def draw_pose(image: np.ndarray, face: Face,
              taken: list[tuple[int, int, int, int]] | None = None) -> None:
    """Head axes at the sellion (x red forward, y green left, z blue up), a head box and a
    two-line label. ``taken`` holds the label boxes already drawn (faces side by side): the
    label goes above its face, else below it, else wherever it overlaps none."""
    t = _thickness(image)
    to_image = face.camera[:2, :3] @ HEAD_IN_MODEL / MICROMETRE  # head metres -> pixels
    origin = face.landmarks[27, :2].astype(np.float64)
    box = origin + _HEAD_BOX @ to_image.T
    for i in range(8):
        for j in range(i + 1, 8):
            if bin(i ^ j).count("1") == 1:  # corners differing in one coordinate
                cv2.line(image, _pt(box[i]), _pt(box[j]), _WHITE, t, cv2.LINE_AA)
    for axis, colour in zip(np.eye(3) * 0.1, (_RED, _GREEN, _BLUE)):
        cv2.arrowedLine(image, _pt(origin), _pt(origin + to_image @ axis), colour, t + 1,
                        cv2.LINE_AA, tipLength=0.15)
    _label(image, [f"yaw {face.yaw:+.0f} pitch {face.pitch:+.0f} roll {face.roll:+.0f}",
                   f"z {face.pose.translation[2]:.2f} m"], face.box, t,
           taken if taken is not None else [])


def _label(image: np.ndarray, lines: list[str], box: np.ndarray, t: int,
           taken: list[tuple[int, int, int, int]]) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    width = max(cv2.getTextSize(line, font, 1.0, t)[0][0] for line in lines)
    # as wide as the face at most (never below a readable size)
    scale = max(0.35, min(0.45 * t, 0.45 * t * (box[2] - box[0]) / max(width * 0.45 * t, 1)))
    sizes = [cv2.getTextSize(line, font, scale, t)[0] for line in lines]
    text_w = max(w for w, _ in sizes)
    line_h = max(h for _, h in sizes) + 4 * t
    text_h = line_h * len(lines)
    h, w = image.shape[:2]
    x = max(0, min(int(box[0]), w - text_w - 2))
    candidates = [int(box[1]) - text_h - 2 * t, int(box[3]) + 2 * t]
    candidates += [int(box[1]) - text_h - k * line_h for k in range(1, 12)]
    rects = [(x, y, x + text_w, y + text_h)
             for y in (max(0, min(c, h - text_h)) for c in candidates)]
    # the first place that overlaps no label drawn before, else the first place
    rect = next((r for r in rects if not any(
        r[0] < o[2] and o[0] < r[2] and r[1] < o[3] and o[1] < r[3] for o in taken)), rects[0])
    taken.append(rect)
    for k, line in enumerate(lines):
        cv2.putText(image, line, (rect[0], rect[1] + (k + 1) * line_h - 2 * t), font, scale,
                    _WHITE, t, cv2.LINE_AA)


def draw(image: np.ndarray, faces: Iterable[Face], mode: str) -> np.ndarray:
    """Draw ``faces`` onto ``image`` (in place) in ``mode``; returns ``image``."""
    drawer = {"sparse": draw_sparse, "dense": draw_dense, "pose": draw_pose}.get(mode)
    if drawer is None:
        raise ValueError(f"unknown drawing mode {mode!r}; choose from {DRAW_MODES}")
    if mode == "pose":
        taken: list[tuple[int, int, int, int]] = []
        for face in faces:
            draw_pose(image, face, taken)
        return image
    for face in faces:
        drawer(image, face)
    return image


def drawer(mode: str) -> Callable[[np.ndarray, list[Face]], np.ndarray]:
    """A function drawing faces onto a frame, in place, in ``mode`` (``mesh``: the native
    renderer)."""
    if mode == "mesh":
        from .render import MeshRenderer

        return MeshRenderer().render_faces
    return lambda frame, faces: draw(frame, faces, mode)
