"""A face in a frame as one row: the record that a recording's CSV, its plot, a chunk's
join and the dataset's table are all made of, and its one text form.

Rows travel as :class:`FaceRow` records (from a worker to the driver too) and are
formatted once, here (:func:`csv_cells`); :class:`CsvWriter` writes them in whole rows.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from ..attention.gazing import camera_mutual_gaze
from ..errors import DenseHeadPoseError
from ..pipeline.results import Face

#: The columns of a recording's CSV, and of the dataset's table after its ``recording``:
#: ``stamp_ns`` the frame's stamp in integer nanoseconds (exact: join on it), ``stamp`` the
#: same in seconds, exact to the nanosecond as text.
CSV_COLUMNS = ("stamp_ns", "stamp", "camera", "id", "yaw_deg", "pitch_deg", "roll_deg", "x_m",
               "y_m", "z_m", "qx", "qy", "qz", "qw", "score", "mutual_gaze")


class OutputError(DenseHeadPoseError):
    """An output that cannot be written."""


class OutputFullError(OutputError):
    """An output's disk is full: the run stops with its outputs closed and whole."""


class FaceRow(NamedTuple):
    """One face in one frame (:data:`CSV_COLUMNS`, numbers unformatted)."""

    stamp_ns: int
    camera: str
    id: str
    yaw: float
    pitch: float
    roll: float
    x: float
    y: float
    z: float
    qx: float
    qy: float
    qz: float
    qw: float
    score: float
    mutual_gaze: float
    """hri_engagement's mutual-gaze score with the camera (FaceArray's ``mutual_gaze``)."""


def face_rows(stamp_ns: int, camera: str, faces: Sequence[Face], names: Sequence[str]
              ) -> list[FaceRow]:
    """A frame's rows, a face each (``names``: their ids)."""
    return [FaceRow(int(stamp_ns), camera, name, float(face.yaw), float(face.pitch),
                    float(face.roll), *(float(v) for v in face.pose.translation),
                    *(float(v) for v in face.pose.quaternion_xyzw), float(face.score),
                    camera_mutual_gaze(face))
            for face, name in zip(faces, names)]


def csv_stamp(nanoseconds: int) -> str:
    """A stamp in seconds, exact to the nanosecond (no float rounding; -4.5 s is
    ``-4.500000000``)."""
    sign = "-" if nanoseconds < 0 else ""
    seconds, fraction = divmod(abs(nanoseconds), 1_000_000_000)
    return f"{sign}{seconds}.{fraction:09d}"


def csv_cells(row: FaceRow) -> list[str]:
    """A row as the CSV writes it (:data:`CSV_COLUMNS`)."""
    return [str(row.stamp_ns), csv_stamp(row.stamp_ns), row.camera, row.id, f"{row.yaw:.4f}",
            f"{row.pitch:.4f}", f"{row.roll:.4f}", f"{row.x:.6f}", f"{row.y:.6f}",
            f"{row.z:.6f}", f"{row.qx:.7f}", f"{row.qy:.7f}", f"{row.qz:.7f}",
            f"{row.qw:.7f}", f"{row.score:.4f}", f"{row.mutual_gaze:.4f}"]


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows of cells as CSV text."""
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue()


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk is full (or a quota or the file size limit reached)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    return isinstance(exc, sqlite3.Error) and "full" in str(exc).lower()


class CsvWriter:
    """A new CSV file written in whole rows: each call's rows go out in one write, and a
    write the disk cannot take is cut back to the last whole row (then
    :class:`OutputFullError`)."""

    def __init__(self, path: Path, header: Sequence[str] = CSV_COLUMNS) -> None:
        self.path = path
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                               0o666)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        self._whole = 0
        self.cells([header])

    def rows(self, rows: Iterable[FaceRow]) -> None:
        """Append ``rows`` (all or none of them)."""
        self.cells(csv_cells(r) for r in rows)

    def cells(self, rows: Iterable[Sequence[object]]) -> None:
        """Append rows of cells (all or none of them)."""
        data = memoryview(csv_text(rows).encode())
        if not data:
            return
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            os.ftruncate(self._fd, self._whole)
            os.lseek(self._fd, self._whole, os.SEEK_SET)
            if disk_full(exc):
                raise OutputFullError(f"{self.path}: the disk is full ({exc.strerror})") \
                    from None
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._whole = os.lseek(self._fd, 0, os.SEEK_CUR)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
