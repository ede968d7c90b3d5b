"""Stability over a distribution of faces: still and moving clips made from many labelled
AFLW2000-3D faces, each at several face sizes on a camera-sized canvas, and their ratios of
tracked (+ smoothed) to per-image error summarised as median and 90th percentile.

``dense-head-pose stability --aflw2000 DIR`` uses it. The faces come from one **half** of the
data set, split by index (``tune``: even indices, ``report``: odd): filters are tuned on one
half and reported on the other, so a figure is never measured on the faces it was tuned on.
Within a half, the faces are spread evenly over the three yaw bands (|yaw| < 30, 30-60,
60-90 degrees: AFLW2000-3D's own bins) and evenly by index within each band.

Each face is placed by the distance protocol (:class:`~.distance.Distance`: its labelled face
``size`` pixels, centred on a grey 1280x720 canvas) and made into the clips of
:mod:`.clips`: still, roll (in the image plane), yaw and pitch (the head turning out of it),
cross (the head crossing the frame). Every frame is noised and JPEG-coded. The clip metrics
are those of :mod:`.stability`, on the labelled face (the face nearest the labels' centre);
a face the detector does not find at a size is counted, not measured.

Ratios are follower / raw (raw: the per-image estimator on every frame): for the still clip,
the jitter of yaw, pitch, roll, translation and landmarks; for the moving clips, the RMS
rotation and landmark errors against the known motion. Lags are in frames, not ratios.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import images
from .aflw2000 import BIN_NAMES, yaw_bin
from .aflw2000_labels import Sample
from .benchmark import format_table
from .clips import crossing_clip, moving_clip, still_clip, turning_clip
from .distance import Distance
from .stability import TURNS, Follower, clip_metrics

CANVAS = (1280, 720)
SIZES = (40, 60, 100, 200)
SET_CLIPS = ("still", "roll", "yaw", "pitch", "cross")
HALVES = ("tune", "report")
STILL_RATIOS = ("yaw_std", "pitch_std", "roll_std", "translation_mm", "landmarks_pct")
MOVING_RATIOS = ("rotation_rms_deg", "landmarks_rms_pct")


@dataclass(frozen=True)
class SetOptions:
    """What :func:`evaluate_set` makes: ``faces`` faces of ``half``, each at ``sizes``
    (pixels), as the ``clips`` of ``still_frames`` / ``moving_frames`` frames."""

    half: str = "report"
    faces: int = 30
    sizes: tuple[int, ...] = SIZES
    clips: tuple[str, ...] = SET_CLIPS
    still_frames: int = 90
    moving_frames: int = 90

    def __post_init__(self) -> None:
        if self.half not in HALVES:
            raise ValueError(f"half must be one of {', '.join(HALVES)}, got {self.half!r}")
        unknown = set(self.clips) - set(SET_CLIPS)
        if unknown:
            raise ValueError(f"unknown clips {sorted(unknown)}: choose from "
                             f"{', '.join(SET_CLIPS)}")
        for size in self.sizes:
            Distance(size, CANVAS)  # ValueError for a size that does not fit


def choose_faces(samples: Sequence[Sample], half: str, count: int
                 ) -> list[tuple[int, Sample]]:
    """``count`` (index, sample) pairs of ``half`` (see module): a third from each yaw band
    (the first bands get the remainder), evenly spread by index within each band."""
    parity = HALVES.index(half)
    pool = [(i, s) for i, s in enumerate(samples) if i % 2 == parity]
    bands: list[list[tuple[int, Sample]]] = [[] for _ in BIN_NAMES]
    for entry in pool:
        band = yaw_bin(entry[1].bin_yaw)
        if band < len(bands):
            bands[band].append(entry)
    chosen = []
    for b, members in enumerate(bands):
        want = min(len(members), count // len(bands) + (b < count % len(bands)))
        if want:
            picks = np.linspace(0, len(members) - 1, want).round().astype(int)
            chosen += [members[k] for k in sorted(set(picks.tolist()))]
    return sorted(chosen, key=lambda entry: entry[0])


def _clips(options: SetOptions, canvas: np.ndarray, face: Any) -> list[Any]:
    made = []
    for name in options.clips:
        if name == "still":
            made.append(still_clip(canvas, options.still_frames))
        elif name == "roll":
            made.append(moving_clip(canvas, options.moving_frames))
        elif name == "cross":
            made.append(crossing_clip(canvas, options.moving_frames))
        else:
            axis, amplitude, hz = next(turn for turn in TURNS if turn[0] == name)
            made.append(turning_clip(canvas, face, axis, amplitude, hz,
                                     options.moving_frames))
    return made


def evaluate_set(estimator: Any, followers: dict[str, Callable[[], Follower]],
                 samples: Sequence[Sample], options: SetOptions,
                 on_face: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Raw and each follower's metrics on every clip of every chosen face and size (see
    module): one row per face, size and clip; ``missed`` lists the faces the detector did
    not find at a size. ``on_face(name, size)`` hears of each face and size done."""
    rows: list[dict[str, Any]] = []
    missed: list[dict[str, Any]] = []
    chosen = choose_faces(samples, options.half, options.faces)
    for index, sample in chosen:
        image = images.read(str(sample.path))
        band = BIN_NAMES[yaw_bin(sample.bin_yaw)]
        for size in options.sizes:
            canvas, moved = Distance(size, CANVAS).apply(image, sample)
            centre = moved.landmarks.mean(axis=0)
            found = [f for f in estimator(canvas).faces
                     if np.linalg.norm(f.landmarks[:, :2].mean(axis=0) - centre) < 0.5 * size]
            base = {"index": index, "image": sample.name, "yaw_band": band, "size": size}
            if not found:
                missed.append(base)
                continue
            face = min(found, key=lambda f: float(np.linalg.norm(
                f.landmarks[:, :2].mean(axis=0) - centre)))
            for clip in _clips(options, canvas, face):
                metrics = clip_metrics(estimator, followers, clip, near=centre)
                if metrics:
                    rows.append({**base, "clip": clip.name, **metrics[0]})
            if on_face is not None:
                on_face(sample.name, size)
    return {"half": options.half, "faces": len(chosen), "sizes": list(options.sizes),
            "canvas": list(CANVAS), "followers": list(followers), "rows": rows,
            "missed": missed}


def _ratio(row: dict[str, Any], follower: str, key: str) -> float:
    raw = row.get("raw", {}).get(key, math.nan)
    value = row.get(follower, {}).get(key, math.nan)
    return value / raw if raw and math.isfinite(raw) and raw > 0 else math.nan


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if math.isfinite(x)], np.float64)
    if v.size == 0:
        return {"n": 0, "median": math.nan, "p90": math.nan}
    return {"n": int(v.size), "median": float(np.median(v)),
            "p90": float(np.percentile(v, 90))}


def summarise_set(report: dict[str, Any]) -> dict[str, Any]:
    """Per follower, clip and quantity: the ratio's median and 90th percentile over all
    rows, per size and per yaw band; the lag's median and 90th percentile likewise."""
    out: dict[str, Any] = {}
    for follower in report["followers"]:
        per: dict[str, Any] = {}
        for clip in SET_CLIPS:
            rows = [r for r in report["rows"] if r["clip"] == clip]
            if not rows:
                continue
            keys = STILL_RATIOS if clip == "still" else (*MOVING_RATIOS, "lag_frames")
            entry: dict[str, Any] = {}
            for key in keys:
                def value(row: dict[str, Any], key: str = key, name: str = follower) -> float:
                    if key == "lag_frames":
                        return float(row.get(name, {}).get(key, math.nan))
                    return _ratio(row, name, key)
                entry[key] = {
                    "all": _stats([value(r) for r in rows]),
                    "size": {str(s): _stats([value(r) for r in rows if r["size"] == s])
                             for s in report["sizes"]},
                    "yaw_band": {b: _stats([value(r) for r in rows if r["yaw_band"] == b])
                                 for b in BIN_NAMES}}
            per[clip] = entry
        out[follower] = per
    return out


def _cell(stats: dict[str, float]) -> str:
    if not stats["n"]:
        return "-"
    return f"{stats['median']:.2f} / {stats['p90']:.2f}"


def set_tables(report: dict[str, Any], summary: dict[str, Any]) -> str:
    """Markdown tables of :func:`summarise_set`: per follower, still ratios by size and by
    yaw band, then the moving clips' ratios and lags (each cell: median / 90th
    percentile)."""
    lines = [f"{report['faces']} faces of the {report['half']} half, sizes "
             f"{', '.join(map(str, report['sizes']))} px on {report['canvas'][0]}x"
             f"{report['canvas'][1]}; {len(report['missed'])} face-sizes not found by the "
             "detector (not measured). Cells: median / 90th percentile of follower / raw "
             "(lag: frames)."]
    groups = [("size", s, f"{s} px") for s in map(str, report["sizes"])]
    groups += [("yaw_band", b, f"|yaw| {b}") for b in BIN_NAMES]
    for follower, per in summary.items():
        if "still" in per:
            rows = [[label, *(_cell(per["still"][k][group][value]) for k in STILL_RATIOS)]
                    for group, value, label in groups]
            rows.append(["all", *(_cell(per["still"][k]["all"]) for k in STILL_RATIOS)])
            lines += ["", f"{follower}: still clip, jitter / raw jitter",
                      format_table(rows, ["faces", "yaw", "pitch", "roll", "translation",
                                          "landmarks"])]
        moving = [c for c in SET_CLIPS if c != "still" and c in per]
        if moving:
            rows = []
            for group, value, label in [*groups, ("all", None, "all")]:
                row = [label]
                for clip in moving:
                    for key in (*MOVING_RATIOS, "lag_frames"):
                        stats = per[clip][key]["all"] if value is None else \
                            per[clip][key][group][value]
                        row.append(_cell(stats))
                rows.append(row)
            header = ["faces"] + [f"{clip}: {k}" for clip in moving
                                  for k in ("rotation", "landmarks", "lag")]
            lines += ["", f"{follower}: moving clips, error / raw error, and lag",
                      format_table(rows, header)]
    return "\n".join(lines)
