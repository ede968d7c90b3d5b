"""Accuracy against labelled truth: AFLW2000-3D, with the protocols papers report.

AFLW2000-3D (Zhu et al. 2016) is the standard test set of 3DDFA, 3DDFA_V2 and the head-pose
papers: 2000 images, each ``imageNNNNN.jpg`` with an ``imageNNNNN.mat`` holding the 68
landmarks of the 3D-model convention (``pt3d_68``) and the pose of 3DDFA's fit
(``Pose_Para``: pitch, yaw, roll in radians). 3DDFA's benchmark files (``AFLW2000-3D_3ddfa/``
beside the images, when present) add the crop box of each image and the yaw that bins it.

* **Alignment NME** (3DDFA's protocol): the mean 2D distance of the 68 points divided by
  ``sqrt(w * h)`` of the labels' bounding box, averaged within each |yaw| bin ([0, 30],
  (30, 60], (60, 90] degrees), then over the three bins. 3DDFA's yaw file puts 7 images
  beyond 90 degrees (up to 188, label errors): they are outside the bins, as the
  benchmark's README defines them; 3DDFA's own code counts them into the last bin, and that
  figure is given too (``nme_pct_last_bin_over_60``).
* **Head pose MAE** (Hopenet's protocol, used by FSA-Net, 6DRepNet, SynergyNet): the images
  whose three labelled angles are within +-99 degrees (1969 of 2000); mean absolute error of
  yaw, pitch and roll, in degrees, in the labels' own decomposition: their rotation is
  ``Rx(pitch) Ry(yaw) Rz(roll)`` with 3DDFA's elementary matrices, i.e. scipy's
  ``Rotation.from_euler("XYZ", [-pitch, -yaw, -roll])``. Angles of different Euler orders
  disagree by tens of degrees at large yaw, so the prediction is decomposed the same way: the
  rotation of the regressor's own affine camera (3DDFA's ``P2sRt``), which is the frame the
  labels were fitted in. The geodesic angle between the two rotations needs no convention.

Two ways to find the face:

* ``benchmark``: the benchmark's crop box is the regressor's region of interest (what 3DDFA
  and 3DDFA_V2 report), then the estimator's further passes;
* ``detector``: the project's own pipeline, detector included. The face is the detection
  whose box holds the labels' centre (the one overlapping their box most); a miss is
  scored with the benchmark box's fit, so every mean stays over all images, and counted.

The **distance protocol** (``Distance``) asks what a robot sees of people two to five metres
away: each image is scaled so that its labelled face is ``face_size`` pixels (the square root
of the labels' box area) and centred on a grey canvas of a camera's size (1280x720,
640x480); the labels follow. Its figures add the NME over the faces found (a plain mean).

Needs ``scipy`` to read the ``.mat`` files (``pip install dense_head_pose[eval]``; plots
need ``matplotlib`` too).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import images
from ..pipeline.estimator import HeadPoseEstimator
from ..pipeline.pose import HEAD_IN_MODEL
from ..pipeline.results import Face
from .aflw2000_labels import (  # noqa: F401  (the protocols' names, re-exported)
    BENCHMARK_FILES,
    EvaluationError,
    Sample,
    camera_rotation,
    geodesic_deg,
    label_angles,
    label_rotation,
    labels_crop,
    load_aflw2000,
    nme,
)
from .distance import Distance

YAW_BINS = ((0.0, 30.0), (30.0, 60.0), (60.0, 90.0))
BIN_NAMES = ("0-30", "30-60", "60-90")
POSE_LIMIT_DEG = 99.0
PROTOCOLS = ("benchmark", "detector")
@dataclass
class Outcome:
    """One image's result under one protocol."""

    name: str
    bin_yaw: float
    nme: float
    angle_errors: list[float]
    """|error| of yaw, pitch, roll, degrees."""
    geodesic: float
    in_pose_range: bool
    detected: bool = True
    extra_boxes: int = 0
    """Detections that are not the labelled face (another person, or a false one)."""


@dataclass
class Run:
    """Every image's outcome of one protocol, and the time it took."""

    protocol: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0


_OPTICAL_TO_LABEL = np.diag([1.0, -1.0, -1.0])


def pose_rotation(face: Face) -> np.ndarray:
    """The rotation of ``face.pose`` (the metric pose: line of sight, and PnP with
    ``pose_method="pnp"``) in the labels' axes: BFM model axes to x right, y up, z out."""
    return _OPTICAL_TO_LABEL @ face.pose.rotation @ HEAD_IN_MODEL.T


def _outcome(sample: Sample, landmarks: np.ndarray, params: np.ndarray,
             detected: bool = True, extra_boxes: int = 0,
             rotation: np.ndarray | None = None) -> Outcome:
    rotation = camera_rotation(params) if rotation is None else rotation
    errors = np.abs((label_angles(rotation) - sample.angles + 180.0) % 360.0 - 180.0)
    return Outcome(sample.name, sample.bin_yaw, nme(landmarks, sample.landmarks),
                   [float(e) for e in errors], geodesic_deg(rotation, sample.rotation),
                   bool(np.all(np.abs(sample.angles) <= POSE_LIMIT_DEG)), detected,
                   extra_boxes)


def _labelled_face(faces: Sequence[Face], sample: Sample) -> tuple[Face | None, int]:
    """The detection of the labelled face (its box holds the labels' centre; the most
    overlapping such box) and how many other boxes there are."""
    centre = sample.landmarks.mean(axis=0)
    lo, hi = sample.landmarks.min(axis=0), sample.landmarks.max(axis=0)
    best, best_overlap = None, 0.0
    for face in faces:
        b = face.box
        if not (b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3]):
            continue
        inter = np.prod(np.clip(np.minimum(hi, b[2:]) - np.maximum(lo, b[:2]), 0, None))
        if inter >= best_overlap:
            best, best_overlap = face, float(inter)
    return best, len(faces) - (best is not None)


def evaluate(estimator: HeadPoseEstimator, samples: Sequence[Sample],
             protocols: Iterable[str] = PROTOCOLS,
             progress: Callable[[int], None] | None = None,
             rotation: str = "camera", distance: Distance | None = None) -> list[Run]:
    """Run each protocol over ``samples`` with ``estimator``'s current options. ``rotation``:
    ``camera``, the regressor's affine camera (the labels' own frame, as 3DDFA_V2 reports);
    ``pose``, the metric pose ``Face.pose`` (its line-of-sight correction with default
    intrinsics, or PnP; only for the detector protocol). ``distance``: every image as the
    distance protocol shows it (see module)."""
    if rotation not in ("camera", "pose"):
        raise ValueError(f"rotation must be camera or pose, got {rotation!r}")
    runs = {p: Run(p) for p in protocols}
    unknown = set(runs) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocol(s) {sorted(unknown)}: {PROTOCOLS}")
    passes = 2 if estimator.options.refine else 1
    for sample in samples:
        image = images.read(str(sample.path))
        if distance is not None:
            image, sample = distance.apply(image, sample)
        for protocol, run in runs.items():
            start = time.perf_counter()
            if protocol == "benchmark":
                outcome = _fit_outcome(estimator, image, sample, passes)
            else:
                faces = estimator(image).faces
                face, extra = _labelled_face(faces, sample)
                if face is None:  # scored with the box fit, counted as missed
                    outcome = _fit_outcome(estimator, image, sample, passes)
                    outcome.detected, outcome.extra_boxes = False, extra
                else:
                    outcome = _outcome(sample, face.landmarks, face.params, True, extra,
                                       pose_rotation(face) if rotation == "pose" else None)
            run.seconds += time.perf_counter() - start
            run.outcomes.append(outcome)
        if progress is not None:
            progress(1)
    return list(runs.values())


def _fit_outcome(estimator: HeadPoseEstimator, image: np.ndarray, sample: Sample,
                 passes: int) -> Outcome:
    fit = estimator.fit(image, sample.roi, passes)
    if fit is None:  # unusable output: the worst score rather than a hole in the means
        return Outcome(sample.name, sample.bin_yaw, float("inf"), [180.0] * 3, 180.0,
                       bool(np.all(np.abs(sample.angles) <= POSE_LIMIT_DEG)))
    return _outcome(sample, fit.landmarks, fit.params)


def yaw_bin(yaw: float) -> int:
    """|yaw| bin 0, 1, 2; 3 beyond 90 degrees (7 images of 3DDFA's yaw file, labelled up to
    188 degrees: outside the protocol's bins)."""
    return 0 if yaw <= 30.0 else 1 if yaw <= 60.0 else 2 if yaw <= 90.0 else 3


def summarise(run: Run, worst: int = 10) -> dict[str, Any]:
    """The standard figures of one run (percent for NME, degrees for angles)."""
    outcomes = run.outcomes
    by_bin = [[o for o in outcomes if yaw_bin(o.bin_yaw) == b] for b in range(4)]
    nme_bins = [float(np.mean([o.nme for o in group])) * 100 if group else float("nan")
                for group in by_bin[:3]]
    # 3DDFA's benchmark code puts |yaw| > 90 into the last bin; the same figure that way
    over_60 = by_bin[2] + by_bin[3]
    nme_over_60 = float(np.mean([o.nme for o in over_60])) * 100 if over_60 else float("nan")
    posed = [o for o in outcomes if o.in_pose_range]
    errors = np.array([o.angle_errors for o in posed]) if posed else np.zeros((0, 3))
    geodesic = np.array([o.geodesic for o in posed])
    summary: dict[str, Any] = {
        "protocol": run.protocol,
        "images": len(outcomes),
        "nme_pct": float(np.mean(nme_bins)),
        "nme_bins_pct": dict(zip(BIN_NAMES, nme_bins)),
        "images_per_bin": dict(zip(BIN_NAMES, [len(g) for g in by_bin])),
        "images_beyond_90": len(by_bin[3]),
        "nme_pct_last_bin_over_60": float(np.mean([*nme_bins[:2], nme_over_60])),
        "pose_images": len(posed),
        "mae_deg": float(errors.mean()) if len(posed) else float("nan"),
        "mae_yaw_pitch_roll_deg": [float(v) for v in errors.mean(axis=0)] if len(posed)
        else [float("nan")] * 3,
        "geodesic_mean_deg": float(geodesic.mean()) if len(posed) else float("nan"),
        "geodesic_median_deg": float(np.median(geodesic)) if len(posed) else float("nan"),
        "ms_per_image": run.seconds / max(len(outcomes), 1) * 1e3,
        "worst": [{"image": o.name, "yaw_abs": round(o.bin_yaw, 1),
                   "nme_pct": round(o.nme * 100, 2), "geodesic_deg": round(o.geodesic, 1)}
                  for o in sorted(outcomes, key=lambda o: -o.nme)[:worst]],
    }
    if run.protocol == "detector":
        missed = [sum(not o.detected for o in group) for group in (
            by_bin[0], by_bin[1], by_bin[2] + by_bin[3])]
        summary["missed"] = sum(missed)
        summary["missed_per_bin"] = dict(zip(BIN_NAMES, missed))
        summary["extra_boxes"] = sum(o.extra_boxes for o in outcomes)
        found = [o.nme for o in outcomes if o.detected]
        summary["nme_found_pct"] = float(np.mean(found)) * 100 if found else float("nan")
    return summary


def table(summaries: Sequence[dict[str, Any]]) -> str:
    """The standard table (markdown), one row per protocol, then the worst images."""
    from .benchmark import format_table

    rows = []
    for s in summaries:
        bins = s["nme_bins_pct"]
        yaw, pitch, roll = s["mae_yaw_pitch_roll_deg"]
        missed = (f"{s['missed']} ({', '.join(str(v) for v in s['missed_per_bin'].values())})"
                  if "missed" in s else "-")
        rows.append([s["protocol"], s["images"], f"{s['nme_pct']:.2f}",
                     " / ".join(f"{bins[b]:.2f}" for b in BIN_NAMES),
                     f"{s['mae_deg']:.2f}", f"{yaw:.2f} / {pitch:.2f} / {roll:.2f}",
                     f"{s['geodesic_mean_deg']:.2f} / {s['geodesic_median_deg']:.2f}",
                     missed, s.get("extra_boxes", "-"),
                     f"{s['nme_found_pct']:.2f}" if "nme_found_pct" in s else "-",
                     f"{s['ms_per_image']:.1f}"])
    out = [format_table(rows, ["protocol", "images", "NME %",
                               "NME by |yaw| 0-30 / 30-60 / 60-90",
                               f"MAE deg ({summaries[0]['pose_images']} images)",
                               "yaw / pitch / roll", "geodesic mean / median",
                               "missed (by bin)", "other boxes", "NME % found",
                               "ms / image"])]
    for s in summaries:
        worst = [[w["image"], w["yaw_abs"], w["nme_pct"], w["geodesic_deg"]]
                 for w in s["worst"]]
        out.append(f"\nworst images, {s['protocol']}:\n"
                   + format_table(worst, ["image", "|yaw|", "NME %", "geodesic deg"]))
    return "\n".join(out)


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` (Agg), or :class:`EvaluationError` saying how to install it."""
    from ..runtime import pyplot

    try:
        return pyplot()
    except ImportError as exc:
        raise EvaluationError("--plot needs matplotlib: pip install "
                              "'dense_head_pose[eval]'") from exc


def plot(runs: Sequence[Run], path: str | Path) -> None:
    """Error against |yaw| (NME and geodesic error), one colour per protocol, with the
    binned means; :class:`EvaluationError` if the file cannot be written."""
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    edges = np.arange(0, 95, 5)
    for run, colour in zip(runs, ("tab:blue", "tab:orange", "tab:green")):
        yaw = np.array([o.bin_yaw for o in run.outcomes])
        values = (np.array([o.nme for o in run.outcomes]) * 100,
                  np.array([o.geodesic for o in run.outcomes]))
        for ax, value in zip(axes, values):
            finite = np.isfinite(value)
            ax.scatter(yaw[finite], value[finite], s=3, alpha=0.25, color=colour)
            centres, means = [], []
            for lo, hi in itertools.pairwise(edges):
                inside = (yaw > lo) & (yaw <= hi) & finite
                if inside.any():
                    centres.append((lo + hi) / 2)
                    means.append(float(np.mean(value[inside])))
            ax.plot(centres, means, color=colour, lw=2, label=f"{run.protocol} (mean per 5 deg)")
    axes[0].set(xlabel="|yaw|, degrees", ylabel="NME, %", title="68-point alignment")
    axes[1].set(xlabel="|yaw|, degrees", ylabel="geodesic error, degrees",
                title="head pose")
    for ax, top in zip(axes, (15, 40)):  # the bins' range; a few outliers lie beyond
        ax.set_xlim(0, 92)
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle("AFLW2000-3D")
    fig.tight_layout()
    try:
        fig.savefig(path)
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot write the plot {path}: {exc}") from None
    finally:
        plt.close(fig)


def to_json(summaries: Sequence[dict[str, Any]], options: Any,
            distance: Distance | None = None) -> dict[str, Any]:
    """Summaries and the estimator options (and distance) they were measured with."""
    return {"dataset": "AFLW2000-3D", "options": asdict(options),
            "distance": None if distance is None else asdict(distance),
            "protocols": {s["protocol"]: s for s in summaries}}
