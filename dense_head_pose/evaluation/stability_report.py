"""The tables of ``dense-head-pose stability``: raw against tracked + smoothed, per face
and clip, and the throughput (:mod:`.stability` measures them)."""

from __future__ import annotations

import math
from typing import Any

from .benchmark import format_table
from .stability import MOVING_KEYS, STILL_KEYS


def _ratio(row: dict[str, Any], clip: str, key: str) -> float:
    raw = row.get("raw", {}).get(clip, {}).get(key, math.nan)
    tracked = row.get("tracked", {}).get(clip, {}).get(key, math.nan)
    return tracked / raw if raw else math.nan


def summary_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per face: the still jitter ratios, the moving error ratios and the lags of
    each clip (tracked + smoothed against raw), the tracker's offset."""
    rows = []
    for row in report["faces"]:
        still = [_ratio(row, "still", k) for k in ("yaw_std", "pitch_std", "roll_std",
                                                   "translation_mm", "landmarks_pct")]
        moving = []
        for clip in ("roll", "yaw", "pitch"):
            moving += [_ratio(row, clip, "rotation_rms_deg"),
                       _ratio(row, clip, "landmarks_rms_pct")]
        lags = [row.get("tracked", {}).get(c, {}).get("lag_frames", math.nan)
                for c in ("roll", "yaw", "pitch")]
        rows.append([f"{row['image']} #{row['face']}", *(f"{v:.2f}" for v in still),
                     *(f"{v:.2f}" for v in moving), " / ".join(f"{v:.2f}" for v in lags),
                     f"{row.get('tracker_offset_deg', math.nan):.2f}"])
    return rows


SUMMARY_COLUMNS = ("face", "yaw std", "pitch std", "roll std", "translation", "landmarks",
                   "roll: rotation", "roll: landmarks", "yaw: rotation", "yaw: landmarks",
                   "pitch: rotation", "pitch: landmarks", "lag roll / yaw / pitch, frames",
                   "tracker offset, deg")


def report_tables(report: dict[str, Any]) -> str:
    """Markdown tables of :func:`evaluate` (and :func:`throughput`) results: a summary of
    ratios, then every figure, raw and tracked."""
    lines = ["Tracked + smoothed against raw, per face (goals: still <= 0.33, moving <= 1.0, "
             "lag <= 1 frame; nan: not in that clip)",
             format_table(summary_rows(report), SUMMARY_COLUMNS), ""]
    detail = []
    for row in report["faces"]:
        label = f"{row['image']} #{row['face']}"
        for clip, keys in (("still", STILL_KEYS), ("roll", MOVING_KEYS), ("yaw", MOVING_KEYS),
                           ("pitch", MOVING_KEYS)):
            if clip not in row.get("raw", {}):
                continue
            for key in keys:
                r = row["raw"][clip].get(key, math.nan)
                t = row["tracked"][clip].get(key, math.nan)
                ratio = f"{t / r:.2f}" if key != "lag_frames" and r else "-"
                detail.append((label, clip, key, f"{r:.3f}", f"{t:.3f}", ratio))
    lines.append(format_table(detail, ("face", "clip", "quantity", "raw", "tracked",
                                       "ratio")))
    if "throughput" in report:
        tp = report["throughput"]
        lines.append("")
        lines.append(f"Throughput on {tp['video']} ({tp['frames']} frames, 1 thread, "
                     "interleaved, medians)")
        rows = [(name, f"{v['wall_ms']:.2f}", f"{v['cpu_ms']:.2f}", f"{v['fps']:.1f}")
                for name, v in tp["runs"].items()]
        lines.append(format_table(rows, ("pipeline", "wall ms/frame", "CPU ms/frame",
                                         "frames/s")))
        raw_fps, tracked_fps = tp["runs"]["raw"]["fps"], tp["runs"]["tracked"]["fps"]
        lines.append(f"tracked / raw frames/s: {tracked_fps / raw_fps:.2f}")
    return "\n".join(lines)
