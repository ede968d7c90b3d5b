"""How steady and how fast video estimates are: synthetic clips from real stills, and metrics.

``dense-head-pose stability IMAGE...`` (and ``scripts`` that tune the defaults) use it:

* **still clip**: the image repeated ``n`` frames at 30 fps, each with Gaussian noise
  (sigma 4), a random sub-pixel shift (at most 0.7 px) and JPEG re-encoding (quality 85).
  The head does not move, so everything that varies is jitter (the shifts stand for sensor
  and sampling jitter): standard deviation of yaw, pitch and roll (degrees) and their
  frame-to-frame steps (RMS), of the translation (mm, RMS distance from its mean) and of the
  landmarks (RMS distance from their mean, in % of the outer-eye distance).
* **moving clip**: the image rotated in-plane about the principal point by
  ``20 deg * sin(2 pi 0.5 Hz t)`` and swept sideways by ``10 % of the width * sin(2 pi 0.25
  Hz t)``, 120 frames, with the same noise. Errors against the known motion applied to the
  clean image's own estimate (per-image: the estimator's; tracked: the tracker's, settled
  over 30 frames of the clean image, so the constant offset between their crops, reported
  as ``tracker_offset_deg``, is not taken for motion error): rotation (geodesic degrees,
  RMS), landmarks (RMS, % of the outer-eye distance), and the lag (frames) of the
  in-plane angle, from the peak of the cross-correlation with the true angle.
* **throughput** on a video, raw and tracked interleaved (see :func:`throughput`).

Faces are followed by position (nearest to the clean image's face), not by id, so raw
per-frame estimates and tracked ones are measured the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..pipeline.pose import view_rotation
from ..pipeline.results import Face, FrameResult
from ..video.one_euro import geodesic_degrees, log_rotation

FPS = 30.0
OUTER_EYES = (36, 45)


@dataclass
class Clip:
    """A synthetic clip: an image moved by a 2x3 transform per frame, with noise. Frames
    are made as they are iterated (:meth:`frames`), one at a time, never held: a clip of
    large frames costs one frame of memory, not all of them."""

    image: np.ndarray
    times: list[float]
    transforms: list[np.ndarray]
    angles_deg: list[float]
    """In-plane rotation applied (counter-clockwise as displayed)."""
    seed: int

    def frames(self) -> Iterator[np.ndarray]:
        """The noisy frames, in order (the same ones on every call)."""
        rng = np.random.default_rng(self.seed + 1000)
        h, w = self.image.shape[:2]
        for m in self.transforms:
            moved = cv2.warpAffine(self.image, m, (w, h), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            yield _noisy(moved, rng)

    def timed(self) -> Iterator[tuple[float, np.ndarray]]:
        """``(seconds, frame)`` pairs."""
        yield from zip(self.times, self.frames())


def _noisy(image: np.ndarray, rng: np.random.Generator, quality: int = 85,
           sigma: float = 4.0) -> np.ndarray:
    """Gaussian noise, then a JPEG round trip; in bands of rows, so a large frame never
    has a floating-point copy of itself in memory."""
    out = np.empty_like(image)
    band = max(1, (1 << 20) // max(1, image[0].size))
    for y in range(0, len(image), band):
        part = image[y:y + band].astype(np.float32)
        part += rng.standard_normal(part.shape, dtype=np.float32) * sigma
        np.clip(part, 0, 255, out=part)
        out[y:y + band] = part
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)


def still_clip(image: np.ndarray, n: int = 90, seed: int = 0) -> Clip:
    """The still-head clip (see module)."""
    rng = np.random.default_rng(seed)
    transforms = []
    for _ in range(n):
        dx, dy = rng.uniform(-0.7, 0.7, 2) / math.sqrt(2.0)  # |shift| <= 0.7 px
        transforms.append(np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]]))
    return Clip(image, [i / FPS for i in range(n)], transforms, [0.0] * n, seed)


def moving_clip(image: np.ndarray, n: int = 120, seed: int = 1, amplitude_deg: float = 20.0,
                rotation_hz: float = 0.5, sweep: float = 0.10, sweep_hz: float = 0.25) -> Clip:
    """The moving-head clip (see module); the principal point is the image centre."""
    h, w = image.shape[:2]
    transforms, angles = [], []
    for i in range(n):
        t = i / FPS
        angle = amplitude_deg * math.sin(2 * math.pi * rotation_hz * t)
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
        m[0, 2] += sweep * w * math.sin(2 * math.pi * sweep_hz * t)
        transforms.append(m)
        angles.append(angle)
    return Clip(image, [i / FPS for i in range(n)], transforms, angles, seed)


def _follow(results: Sequence[FrameResult], reference: Face, transforms: Sequence[np.ndarray]
            ) -> list[Face | None]:
    """Per frame, the face nearest to where the reference face was moved to (or None)."""
    out: list[Face | None] = []
    centre = reference.landmarks[:, :2].mean(axis=0)
    size = float(np.ptp(reference.landmarks[:, 0]))
    for result, m in zip(results, transforms):
        target = m[:, :2] @ centre + m[:, 2]
        best, best_d = None, 0.5 * size
        for face in result.faces:
            d = float(np.linalg.norm(face.landmarks[:, :2].mean(axis=0) - target))
            if d < best_d:
                best, best_d = face, d
        out.append(best)
    return out


def _eye_distance(face: Face) -> float:
    a, b = OUTER_EYES
    return float(np.linalg.norm(face.landmarks[a, :2] - face.landmarks[b, :2]))


def still_metrics(results: Sequence[FrameResult], reference: Face, clip: Clip
                  ) -> dict[str, float]:
    """Jitter of one face over a still clip (see module)."""
    faces = _follow(results, reference, clip.transforms)
    found = [(f, m) for f, m in zip(faces, clip.transforms) if f is not None]
    if len(found) < 2:
        return {"found": len(found) / len(faces)}
    angles = np.array([(f.yaw, f.pitch, f.roll) for f, _ in found])
    trans = np.array([f.pose.translation for f, _ in found]) * 1e3
    # the sub-pixel shifts are part of the noise (sensor and sampling jitter of a head
    # that does not move): landmarks are measured where they are, not shifted back
    lms = np.array([f.landmarks[:, :2] for f, _ in found])
    eye = _eye_distance(reference)
    return {
        "found": len(found) / len(faces),
        "yaw_std": float(angles[:, 0].std()), "pitch_std": float(angles[:, 1].std()),
        "roll_std": float(angles[:, 2].std()),
        "yaw_step_rms": float(np.sqrt(np.mean(np.diff(angles[:, 0]) ** 2))),
        "translation_mm": float(np.sqrt(np.mean(np.sum((trans - trans.mean(0)) ** 2, 1)))),
        "landmarks_pct": float(np.sqrt(np.mean(np.sum((lms - lms.mean(0)) ** 2, 2)))
                               / eye * 100),
    }


def moving_metrics(results: Sequence[FrameResult], reference: Face, clip: Clip
                   ) -> dict[str, float]:
    """Error and lag of one face over a moving clip against the known motion."""
    faces = _follow(results, reference, clip.transforms)
    ref_rot = view_rotation(reference.camera)[0]
    eye = _eye_distance(reference)
    rot_err, lm_err, est_angle, true_angle = [], [], [], []
    for face, m, angle in zip(faces, clip.transforms, clip.angles_deg):
        if face is None:
            continue
        a = math.radians(angle)  # counter-clockwise on screen: -a about the optical z axis
        rz = np.array([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0],
                       [0.0, 0.0, 1.0]])
        truth = rz @ ref_rot
        rot = view_rotation(face.camera)[0]
        rot_err.append(geodesic_degrees(rot, truth))
        true_lm = reference.landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        lm_err.append(np.sqrt(np.mean(np.sum((face.landmarks[:, :2] - true_lm) ** 2, 1))))
        est_angle.append(-math.degrees(log_rotation(rot @ ref_rot.T)[2]))
        true_angle.append(angle)
    if len(rot_err) < 10:
        return {"found": len(rot_err) / len(faces)}
    return {"found": len(rot_err) / len(faces),
            "rotation_rms_deg": float(np.sqrt(np.mean(np.square(rot_err)))),
            "landmarks_rms_pct": float(np.sqrt(np.mean(np.square(lm_err)))) / eye * 100,
            "lag_frames": lag_frames(np.array(est_angle), np.array(true_angle))}


def lag_frames(estimate: np.ndarray, truth: np.ndarray, max_lag: int = 8) -> float:
    """Delay of ``estimate`` behind ``truth`` in frames (sub-frame, from the peak of their
    cross-correlation, parabola through the best three lags)."""
    e = estimate - estimate.mean()
    g = truth - truth.mean()
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([np.dot(e[k:], g[:len(g) - k]) if k >= 0 else np.dot(e[:k], g[-k:])
                     for k in lags], dtype=np.float64)
    i = int(np.argmax(corr))
    if 0 < i < len(lags) - 1:
        denom = corr[i - 1] - 2 * corr[i] + corr[i + 1]
        shift = 0.5 * (corr[i - 1] - corr[i + 1]) / denom if denom else 0.0
        return float(lags[i] + shift)
    return float(lags[i])


def throughput(frames: Callable[[], Iterable[np.ndarray]],
               runners: dict[str, Callable[[], Callable]], repeats: int = 3
               ) -> tuple[dict[str, dict[str, float]], int]:
    """Per-frame wall and CPU time of each runner, and the number of frames per pass.

    ``frames()`` streams the video from its start (one frame in memory at a time); each pass
    gives every frame to each runner in turn, so the machine's state affects all alike, and
    the ``repeats`` passes are pooled (medians). ``runners`` maps a name to a factory
    returning a fresh per-frame callable ``f(frame, timestamp)`` (a new tracker per pass)."""
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    count = 0
    for _ in range(repeats):
        runs = {name: factory() for name, factory in runners.items()}
        count = 0
        for i, frame in enumerate(frames()):
            for name, run in runs.items():
                w0, c0 = time.perf_counter(), time.process_time()
                run(frame, i / 25.0)
                wall[name].append((time.perf_counter() - w0) * 1e3)
                cpu[name].append((time.process_time() - c0) * 1e3)
            count += 1
    if count == 0:
        raise ValueError("no frame to measure throughput on")
    return {name: {"wall_ms": float(np.median(wall[name])),
                   "cpu_ms": float(np.median(cpu[name])),
                   "fps": 1e3 / float(np.mean(wall[name]))}
            for name in runners}, count


STILL_KEYS = ("yaw_std", "pitch_std", "roll_std", "yaw_step_rms", "translation_mm",
              "landmarks_pct")
MOVING_KEYS = ("rotation_rms_deg", "landmarks_rms_pct", "lag_frames")


#: The largest frame of a clip (an 8K frame is 33 Mpixel): each clip frame is made, noised
#: and JPEG-coded, and larger ones would cost seconds and gigabytes each.
MAX_CLIP_PIXELS = 36_000_000


def face_size_scale(estimator: Any, image: np.ndarray, width: int) -> float:
    """The scale that makes ``image``'s largest face ``width`` pixels wide; ValueError if
    it has no face or the scaled image would be larger than :data:`MAX_CLIP_PIXELS`."""
    faces = estimator(image).faces
    if not faces:
        raise ValueError("no face to scale")
    scale = width / float(faces[0].box[2] - faces[0].box[0])
    h, w = image.shape[:2]
    size = (round(w * scale), round(h * scale))
    if size[0] * size[1] > MAX_CLIP_PIXELS:
        raise ValueError(f"--face-sizes {width}: the image would be {size[0]}x{size[1]} "
                         f"({size[0] * size[1] / 1e6:.0f} Mpixel), more than the "
                         f"{MAX_CLIP_PIXELS / 1e6:.0f} Mpixel a clip frame may have; give a "
                         "smaller size")
    return scale


def scaled(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` resized by ``scale`` (area-averaged down, cubic up)."""
    h, w = image.shape[:2]
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=interpolation)


def at_face_size(estimator: Any, image: np.ndarray, width: int) -> np.ndarray:
    """``image`` scaled so that its largest face's detector box is ``width`` pixels wide
    (see :func:`face_size_scale`)."""
    return scaled(image, face_size_scale(estimator, image, width))


def evaluate(estimator: Any, tracker_factory: Callable[[], Any],
             named_images: Sequence[tuple[str, np.ndarray]], still_frames: int = 90,
             moving_frames: int = 120, face_sizes: Sequence[int] = ()) -> dict[str, Any]:
    """Raw (per-image estimator) and tracked results on the still and moving clips of each
    image; one entry per face of the clean image. ``face_sizes``: also each image scaled so
    its largest face is that many pixels wide (a person far from a small camera)."""
    rows = []
    for name, image in _clip_images(estimator, named_images, face_sizes):
        reference = estimator(image).faces
        still, moving = still_clip(image, still_frames), moving_clip(image, moving_frames)
        runs = {}
        for label, clip in (("still", still), ("moving", moving)):
            tracker = tracker_factory()
            raw, tracked = [], []
            for t, frame in clip.timed():  # one frame in memory at a time
                raw.append(_light(estimator(frame)))
                tracked.append(_light(tracker(frame, t)))
            runs[("raw", label)], runs[("tracked", label)] = raw, tracked
        # the tracker's own estimate of the clean image: its crops follow the landmarks,
        # not the detector box, and the two settle on slightly different fits (0.3-1.7 deg
        # on the test images); that constant offset is reported, not counted as motion error
        tracker = tracker_factory()
        for i in range(30):
            settled = tracker(image, i / FPS)
        for k, face in enumerate(reference):
            own = _follow([settled], face, [np.eye(2, 3)])[0] or face
            rows.append({"image": name, "face": k, "tracker_offset_deg": geodesic_degrees(
                view_rotation(face.camera)[0], view_rotation(own.camera)[0]), **{
                mode: {"still": still_metrics(runs[(mode, "still")], face, still),
                       "moving": moving_metrics(runs[(mode, "moving")],
                                                own if mode == "tracked" else face, moving)}
                for mode in ("raw", "tracked")}})
    return {"faces": rows}


def _clip_images(estimator: Any, named_images: Sequence[tuple[str, np.ndarray]],
                 face_sizes: Sequence[int]) -> Iterator[tuple[str, np.ndarray]]:
    """The images the clips are made of: each as it is, then at each face size. Every size
    is checked before the first clip (ValueError); each scaled image is made when its turn
    comes, so only one is in memory."""
    scales = [(name, image, width, face_size_scale(estimator, image, width))
              for name, image in named_images for width in face_sizes]
    yield from named_images
    for name, image, width, scale in scales:
        yield f"{name} @{width}px", scaled(image, scale)


def _light(result: FrameResult) -> FrameResult:
    """A frame's result without what the metrics do not read (the dense vertices)."""
    for face in result.faces:
        face._vertices = face._model_vertices = None
    return result


def report_tables(report: dict[str, Any]) -> str:
    """Markdown tables of :func:`evaluate` (and :func:`throughput`) results."""
    from .benchmark import format_table

    lines = []
    still_rows, moving_rows = [], []
    for row in report["faces"]:
        label = f"{row['image']} #{row['face']}"
        raw, tracked = row["raw"], row["tracked"]
        for key in STILL_KEYS:
            r, t = raw["still"].get(key, math.nan), tracked["still"].get(key, math.nan)
            still_rows.append((label, key, f"{r:.3f}", f"{t:.3f}", f"{t / r:.2f}" if r else "-"))
        for key in MOVING_KEYS:
            r, t = raw["moving"].get(key, math.nan), tracked["moving"].get(key, math.nan)
            ratio = f"{t / r:.2f}" if key != "lag_frames" and r else "-"
            moving_rows.append((label, key, f"{r:.3f}", f"{t:.3f}", ratio))
    lines.append("Still head (jitter; goal: tracked / raw <= 0.33)")
    lines.append(format_table(still_rows, ("face", "quantity", "raw", "tracked", "ratio")))
    lines.append("")
    lines.append("Moving head (error against the known motion; goal: ratio <= 1.1, "
                 "lag <= 1 frame)")
    lines.append(format_table(moving_rows, ("face", "quantity", "raw", "tracked", "ratio")))
    if "throughput" in report:
        tp = report["throughput"]
        lines.append("")
        lines.append(f"Throughput on {tp['video']} ({tp['frames']} frames, 1 thread, "
                     "interleaved, medians; goal: tracked >= 1.6x raw frames/s)")
        rows = [(name, f"{v['wall_ms']:.2f}", f"{v['cpu_ms']:.2f}", f"{v['fps']:.1f}")
                for name, v in tp["runs"].items()]
        lines.append(format_table(rows, ("pipeline", "wall ms/frame", "CPU ms/frame",
                                         "frames/s")))
        raw_fps, tracked_fps = tp["runs"]["raw"]["fps"], tp["runs"]["tracked"]["fps"]
        lines.append(f"tracked / raw frames/s: {tracked_fps / raw_fps:.2f}")
    return "\n".join(lines)
