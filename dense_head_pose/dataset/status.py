"""What became of a recording, as one record (``--json``, the recordings table, the
records of ``--resume``) and as lines of the log.

A status holds the recording's name, path and ``status`` (``done``, ``failed``,
``skipped``: done before, ``interrupted``), its counts summed over its chunks (``frames``,
``faces``, ``face_ids``, ``media_s``, ``wall_s``, ``cpu_s``), ``chunks``, ``attempts``,
``nodes``, ``problems``, ``error``, and for a bag the counts of
:class:`~..recordings.summary.BagSummary` (``frames_read``, ``frames_processed``, ...).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from ..recordings.rows import FaceRow
from ..recordings.summary import BagSummary
from .planning import Recording
from .work import Outcome

_SUMMED = ("frames_read", "frames_processed", "frames_unusable", "undeserializable",
           "stamps_back", "warmup_frames", "faces", "messages_written")


def _details(outcomes: list[Outcome]) -> dict[str, Any]:
    """The bag summaries of a recording's chunks as one (counts summed)."""
    details = [o.details for o in outcomes if o.details]
    if len(details) <= 1:
        return dict(details[0]) if details else {}
    out = dict(details[0])
    for key in _SUMMED:
        out[key] = sum(d.get(key) or 0 for d in details)
    for key in ("recorded_s", "wall_s", "cpu_s"):
        out[key] = sum(d.get(key) or 0.0 for d in details)
    out["problems"] = [p for d in details for p in d.get("problems") or []]
    out["error"] = next((d["error"] for d in details if d.get("error")), None)
    out["interrupted"] = any(d.get("interrupted") for d in details)
    wall = out["wall_s"]
    out["real_time_factor"] = out["recorded_s"] / wall if wall > 0 else float("nan")
    out["failed"] = out["error"] is not None
    return out


def finished_status(recording: Recording, outcomes: list[Outcome],
                    joined: list[FaceRow]) -> dict[str, Any]:
    """The status of a recording whose tasks all ended (or one failed)."""
    failed = next((o for o in outcomes if o.error is not None), None)
    details = _details(outcomes)
    face_ids = (len({(r.camera, r.id) for r in joined}) if len(outcomes) > 1
                else details.get("face_ids", outcomes[0].details.get("face_ids", 0)))
    status = {
        **{k: v for k, v in details.items() if k not in ("path",)},
        "recording": recording.name, "path": recording.path,
        "status": "failed" if failed is not None else "done",
        "error": failed.error if failed is not None else None,
        "frames": sum(o.frames for o in outcomes), "faces": sum(o.faces for o in outcomes),
        "face_ids": face_ids if failed is None else details.get("face_ids", 0),
        "media_s": round(sum(o.media_s for o in outcomes), 3),
        "wall_s": round(sum(o.wall_s for o in outcomes), 3),
        "cpu_s": round(sum(o.cpu_s for o in outcomes), 3),
        "chunks": len(recording.tasks), "attempts": 1 + recording.attempts,
        "nodes": ",".join(sorted({o.node for o in outcomes if o.node})),
        "problems": [p for o in outcomes for p in o.problems],
        "failed": failed is not None}
    return status


def interrupted_status(recording: Recording, outcome: Outcome | str) -> dict[str, Any]:
    """The status of a recording a stop signal ended."""
    details = outcome.details if isinstance(outcome, Outcome) else {}
    return {**details, "recording": recording.name, "path": recording.path,
            "status": "interrupted", "error": None, "failed": False,
            "chunks": len(recording.tasks), "attempts": 1 + recording.attempts}


def status_lines(status: dict[str, Any]) -> list[str]:
    """A recording's status as log lines (the first an error's for a failed one)."""
    path, word = status.get("path"), status.get("status")
    if word == "failed" and not status.get("frames"):
        return [f"{path}: not processed: {status.get('error')}"]
    if word == "failed":
        head = f"{path}: stopped: {status.get('error')}; the outputs hold the frames " \
               "processed before it, closed and whole"
    else:
        shown = {"done": "done", "skipped": "skipped (done before, --resume)",
                 "interrupted": "interrupted"}.get(str(word), str(word))
        head = (f"{path}: {shown}: {status.get('frames', 0)} frame(s), "
                f"{status.get('faces', 0)} face(s), {status.get('face_ids', 0)} face id(s), "
                f"{status.get('media_s') or 0:.1f} s of media"
                + (f" in {status.get('chunks')} chunks" if (status.get("chunks") or 1) > 1
                   else ""))
    lines = [head]
    if "frames_read" in status and word != "skipped":
        lines += _bag_lines(status)[1:]
    else:
        lines += [f"  {p}" for p in status.get("problems") or []]
    if status.get("skipped"):
        lines.append(f"  {status['skipped']} undecodable file(s) skipped")
    if status.get("codec") and word == "done":
        lines.append(f"  wrote {status.get('out')} ({status['codec']})")
    return lines


def _bag_lines(status: dict[str, Any]) -> list[str]:
    names = {f.name for f in fields(BagSummary)}
    summary = BagSummary(**{k: v for k, v in status.items() if k in names and k != "error"})
    return [line for line in summary.lines() if not line.startswith(("  stopped:",
                                                                     "  interrupted:"))]
