"""How steady, how true and how fast video estimates are: synthetic clips made from real
stills, with the motion known, and their metrics.

``dense-head-pose stability IMAGE...`` uses it. Every clip is 30 fps, each frame with
Gaussian noise (sigma 4) and JPEG re-encoding (quality 85); frames are made one at a time.

* **still**: the image repeated, each frame shifted by a random sub-pixel amount (at most
  0.7 px, sensor and sampling jitter). The head does not move, so everything that varies is
  jitter: the standard deviation of yaw, pitch and roll (degrees) and the RMS of their
  frame-to-frame steps, of the translation (mm, RMS distance from its mean) and of the
  landmarks (RMS distance from their mean, in % of the outer-eye distance).
* **roll**: the image rotated in the image plane about its centre by ``20 deg * sin(2 pi
  0.5 Hz t)`` and swept sideways by ``10 % of the width * sin(2 pi 0.25 Hz t)``.
* **yaw**, **pitch**: the largest face turned out of the image plane about its own vertical
  (horizontal) axis by ``25 deg`` (``15 deg``) ``* sin(2 pi 0.5 Hz t)``, drawn from the still
  and its fitted 3DMM (:mod:`.synthetic`): peak speeds 63, 79 and 47 deg/s.
* **cross** (only for many faces, :mod:`.stability_set`): the image shifted sideways across
  60 % of its width, easing in and out (:func:`.clips.crossing_clip`).

On the moving clips each pipeline's estimate is compared with its own estimate of the
clean, unmoved frame, moved as the frame was (per-image: the estimator's; tracked: the
tracker's after it settled on the clean frame, so the constant offset between their crops,
``tracker_offset_deg``, is not taken for motion error): rotation error (geodesic degrees,
RMS), landmark error (RMS, % of the outer-eye distance), and the lag (frames) of the turned
angle, from the peak of the cross-correlation with the true angle (of a crossing: of the
landmarks' sideways speed with the true speed).

**Throughput** on a video: raw and tracked interleaved (see :func:`throughput`).

Faces are followed by position (nearest to where the reference face was moved to), not by
id, so raw per-frame estimates and tracked ones are measured the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

import cv2
import numpy as np

from ..pipeline.pose import geodesic_degrees, log_rotation, view_rotation
from ..pipeline.results import Face, FrameResult
from .clips import FPS, Clip, Motion, moving_clip, still_clip, turning_clip

OUTER_EYES = (36, 45)
#: The turning clips: axis, amplitude (degrees), frequency (Hz).
TURNS = (("yaw", 25.0, 0.5), ("pitch", 15.0, 0.5))
#: Every clip, in the order of the tables.
CLIPS = ("still", "roll", *(axis for axis, _, _ in TURNS))
_MODEL_AXIS = {"pitch": 0, "yaw": 1, "roll": 2}


def _truth(clip: Clip, motion: Motion, reference: Face) -> tuple[np.ndarray, np.ndarray]:
    """The true rotation and landmarks (pixels) of ``reference`` moved by ``motion``."""
    ref_rot = view_rotation(reference.camera)[0]
    if motion.rotation is None:  # the image moved: in-plane, about the optical axis
        a = math.radians(motion.angle_deg)  # counter-clockwise on screen: -a about z
        rz = np.array([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0],
                       [0.0, 0.0, 1.0]])
        m = motion.transform
        return rz @ ref_rot, reference.landmarks[:, :2] @ m[:, :2].T + m[:, 2]
    assert clip.head is not None
    camera = np.asarray(reference.camera, np.float64)
    linear = camera[:, :3] @ motion.rotation
    offset = camera[:, 3] + camera[:, :3] @ clip.head.centre - linear @ clip.head.centre
    model = reference._require_model().landmarks_model(reference.params)
    landmarks = model @ linear.T + offset
    return view_rotation(np.hstack([linear, offset[:, None]]))[0], landmarks[:, :2]


def _driven(clip: Clip, face: Face, reference: Face) -> float:
    """The clip's driven coordinate as ``face`` shows it: the turned angle (degrees) of its
    rotation relative to the reference's, or for a crossing, how far its landmarks moved
    sideways (pixels)."""
    if clip.axis == "cross":
        return float(face.landmarks[:, 0].mean() - reference.landmarks[:, 0].mean())
    rotation = view_rotation(face.camera)[0]
    ref_rot = view_rotation(reference.camera)[0]
    if clip.head is None:
        return -math.degrees(log_rotation(rotation @ ref_rot.T)[2])
    return math.degrees(log_rotation(ref_rot.T @ rotation)[_MODEL_AXIS[clip.axis]])


def _follow(results: Sequence[FrameResult], reference: Face, clip: Clip
            ) -> list[Face | None]:
    """Per frame, the face nearest to where the reference face was moved to (or None)."""
    out: list[Face | None] = []
    size = float(np.ptp(reference.landmarks[:, 0]))
    for result, motion in zip(results, clip.motions):
        target = _truth(clip, motion, reference)[1].mean(axis=0)
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
    faces = _follow(results, reference, clip)
    found = [f for f in faces if f is not None]
    if len(found) < 2:
        return {"found": len(found) / len(faces)}
    angles = np.array([(f.yaw, f.pitch, f.roll) for f in found])
    trans = np.array([f.pose.translation for f in found]) * 1e3
    # the sub-pixel shifts are part of the noise (sensor and sampling jitter of a head
    # that does not move): landmarks are measured where they are, not shifted back
    lms = np.array([f.landmarks[:, :2] for f in found])
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
    faces = _follow(results, reference, clip)
    eye = _eye_distance(reference)
    rot_err, lm_err, est_angle, true_angle = [], [], [], []
    for face, motion in zip(faces, clip.motions):
        if face is None:
            continue
        truth_rot, truth_lm = _truth(clip, motion, reference)
        rot = view_rotation(face.camera)[0]
        rot_err.append(geodesic_degrees(rot, truth_rot))
        lm_err.append(np.sqrt(np.mean(np.sum((face.landmarks[:, :2] - truth_lm) ** 2, 1))))
        est_angle.append(_driven(clip, face, reference))
        true_angle.append(motion.shift_px if clip.axis == "cross" else motion.angle_deg)
    if len(rot_err) < 10:
        return {"found": len(rot_err) / len(faces)}
    return {"found": len(rot_err) / len(faces),
            "rotation_rms_deg": float(np.sqrt(np.mean(np.square(rot_err)))),
            "landmarks_rms_pct": float(np.sqrt(np.mean(np.square(lm_err)))) / eye * 100,
            "lag_frames": lag_frames(*(np.diff(np.array(v)) if clip.axis == "cross"
                                       else np.array(v) for v in (est_angle, true_angle)))}


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
             moving_frames: int = 120, face_sizes: Sequence[int] = (),
             clips: Sequence[str] = CLIPS,
             on_clip: Callable[[str, str], None] | None = None) -> dict[str, Any]:
    """Raw (per-image estimator) and tracked results on the ``clips`` of each image: still
    and roll for every face of the clean image, the turns (:data:`TURNS`) for its largest
    face. ``face_sizes``: also each image scaled so its largest face is that many pixels
    wide (a person far from a small camera). ``on_clip(image, clip)`` hears of each clip
    done."""
    unknown = set(clips) - set(CLIPS)
    if unknown:
        raise ValueError(f"unknown clips {sorted(unknown)}: choose from {', '.join(CLIPS)}")
    rows = []
    for name, image in _clip_images(estimator, named_images, face_sizes):
        faces = estimator(image).faces
        made = [still_clip(image, still_frames)] if "still" in clips else []
        made += [moving_clip(image, moving_frames)] if "roll" in clips else []
        made += [turning_clip(image, faces[0], axis, amplitude, hz, moving_frames)
                 for axis, amplitude, hz in TURNS if axis in clips] if faces else []
        entries = [{"image": name, "face": k} for k in range(len(faces))]
        followers = {"tracked": lambda: Live(tracker_factory())}
        for clip in made:
            for k, metrics in enumerate(clip_metrics(estimator, followers, clip)):
                if k < len(entries):
                    for mode in ("raw", "tracked"):
                        entries[k].setdefault(mode, {})[clip.name] = metrics[mode]
                    if clip.name == "roll":
                        entries[k]["tracker_offset_deg"] = metrics["offset"]["tracked"]
            if on_clip is not None:
                on_clip(name, clip.name)
        rows += entries
    return {"faces": rows}


class Follower(Protocol):
    """A video pipeline under test, fed one frame at a time: ``push`` returns the results
    ready so far (a look-ahead smoother holds some back), ``finish`` the rest, in frame
    order."""

    def push(self, frame: np.ndarray, t: float) -> list[FrameResult]: ...

    def finish(self) -> list[FrameResult]: ...


class Live:
    """A :class:`Follower` of a pipeline that answers every frame at once (a tracker)."""

    def __init__(self, run: Callable[[np.ndarray, float], FrameResult]) -> None:
        self._run = run

    def push(self, frame: np.ndarray, t: float) -> list[FrameResult]:
        return [self._run(frame, t)]

    def finish(self) -> list[FrameResult]:
        return []


def clip_metrics(estimator: Any, followers: dict[str, Callable[[], Follower]], clip: Clip,
                 near: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Raw (``estimator`` per frame) and each follower's metrics, per face of a clip: every
    face of the clean frame, the one nearest to the point ``near`` when given, and on a
    turning clip the largest face."""
    unmoved = clip.unmoved()
    references = estimator(unmoved).faces
    if near is not None and references:
        references = [min(references, key=lambda f: float(np.linalg.norm(
            f.landmarks[:, :2].mean(axis=0) - near)))]
    elif clip.head is not None:
        references = references[:1]
    # each follower's own estimate of the clean frame: a tracker's crops follow the
    # landmarks, not the detector box, and the two settle on slightly different fits;
    # that constant offset is reported, not counted as motion error
    settled = {}
    for name, factory in followers.items():
        follower = factory()
        results = [r for i in range(30) for r in follower.push(unmoved, i / FPS)]
        settled[name] = (results + follower.finish())[-1]
    runs = {name: factory() for name, factory in followers.items()}
    raw: list[FrameResult] = []
    followed: dict[str, list[FrameResult]] = {name: [] for name in followers}
    for t, frame in clip.timed():  # one frame in memory at a time
        raw.append(_light(estimator(frame)))
        for name, follower in runs.items():
            followed[name] += [_light(r) for r in follower.push(frame, t)]
    for name, follower in runs.items():
        followed[name] += [_light(r) for r in follower.finish()]
    metric = still_metrics if clip.name == "still" else moving_metrics
    out = []
    for face in references:
        still = Motion(rotation=np.eye(3) if clip.head is not None else None)
        entry: dict[str, Any] = {"raw": metric(raw, face, clip), "offset": {}}
        for name, results in followed.items():
            own = _follow([settled[name]], face, Clip(
                clip.name, clip.image, [0.0], [still], 0, clip.head, clip.axis))[0] or face
            entry[name] = metric(results, own, clip)
            entry["offset"][name] = geodesic_degrees(view_rotation(face.camera)[0],
                                                     view_rotation(own.camera)[0])
        out.append(entry)
    return out


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
