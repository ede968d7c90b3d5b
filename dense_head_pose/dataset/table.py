"""The dataset's table: every face of every frame, and a row per recording.

``--summary FILE`` writes two tables, as Parquet (``.parquet``, through pyarrow) or CSV
(``.csv``): ``FILE`` with a row per face per frame (:data:`FACE_COLUMNS`: the recording,
the columns of ``bag --csv`` with the same names, the chunk; ``stamp_ns`` an integer in
both formats, so the table and a recording's CSV join on it exactly) and
``FILE``'s stem + ``.recordings`` + its suffix with a row per recording
(:data:`RECORDING_COLUMNS`). The face rows are streamed from the per-recording parts one
recording at a time, so the writer's memory does not grow with the dataset; both files are
written under temporary names and renamed when whole.
"""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError
from ..output_files import OutputPathError
from ..recordings.rows import CSV_COLUMNS, FaceRow, csv_cells

FACE_COLUMNS = ("recording", *CSV_COLUMNS, "chunk")
RECORDING_COLUMNS = ("recording", "path", "status", "frames", "faces", "face_ids", "media_s",
                     "wall_s", "cpu_s", "chunks", "attempts", "nodes", "error")
FORMATS = (".parquet", ".csv")
#: A recording's part of the table (a hidden CSV beside the run's records): its chunk, then
#: the columns of ``bag --csv``.
PART_COLUMNS = ("chunk", *CSV_COLUMNS)


def check_summary_path(path: Path) -> None:
    """``--summary``'s suffix is one written here, and pyarrow is there for Parquet."""
    if path.suffix.lower() not in FORMATS:
        raise OutputPathError(f"--summary {path}: the table is .parquet or .csv")
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise OutputPathError("--summary .parquet needs pyarrow: pip install "
                                  "\"dense-head-pose[cluster]\" (or give a .csv)") from None


def recordings_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}.recordings{path.suffix}")


def face_rows(recording: str, chunked_rows: Iterable[Sequence[str]]) -> Iterable[list[Any]]:
    """Table rows from a part's rows (chunk, then the CSV columns of ``bag --csv``)."""
    for chunk, *cells in chunked_rows:
        yield [recording, *cells, chunk]


_TYPES = {"stamp_ns": int, "stamp": float, "yaw_deg": float, "pitch_deg": float,
          "roll_deg": float, "x_m": float, "y_m": float, "z_m": float, "qx": float,
          "qy": float, "qz": float, "qw": float, "score": float, "chunk": int,
          "frames": int, "faces": int, "face_ids": int, "media_s": float, "wall_s": float,
          "cpu_s": float, "chunks": int, "attempts": int}


def _arrow_table(columns: Sequence[str], rows: list[Sequence[Any]]) -> Any:
    import pyarrow as pa

    data = {}
    for i, name in enumerate(columns):
        kind = _TYPES.get(name, str)
        values = [r[i] for r in rows]
        if kind is str:
            data[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
        elif kind is int:
            data[name] = pa.array([None if v in (None, "") else int(v) for v in values],
                                  pa.int64())
        else:
            data[name] = pa.array([None if v in (None, "") else float(v) for v in values],
                                  pa.float64())
    return pa.table(data)


class TableWriter:
    """One table, written whole under a temporary name, then renamed."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path, self.columns = path, tuple(columns)
        self.partial = path.with_name(f".{path.name}.partial")
        self.parquet = path.suffix.lower() == ".parquet"
        self._writer: Any = None
        self._file: Any = None
        if self.parquet:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self.partial, _arrow_table(self.columns,
                                                                       []).schema)
        else:
            self._file = open(self.partial, "w", newline="")  # noqa: SIM115 (closed below)
            csv.writer(self._file).writerow(self.columns)

    def rows(self, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        if self.parquet:
            self._writer.write_table(_arrow_table(self.columns, rows))
        else:
            csv.writer(self._file).writerows(["" if v is None else v for v in r]
                                             for r in rows)

    def close(self) -> None:
        """Finish and rename into place."""
        if self.parquet:
            self._writer.close()
        else:
            self._file.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Give up (an error is being raised): nothing half written is left."""
        with contextlib.suppress(Exception):  # its buffer may not fit either
            self._writer.close() if self.parquet else self._file.close()
        self.partial.unlink(missing_ok=True)


class TableError(DenseHeadPoseError):
    """A table that cannot be written (a full disk): one line, nothing half written."""


def write_summary(path: Path, parts: Iterable[tuple[str, Path | None]],
                  statuses: Iterable[Mapping[str, Any]]) -> None:
    """The two tables: face rows from each recording's part file (``(recording, part)``,
    part None: no rows), and ``statuses``; :class:`TableError` if they cannot be written."""
    try:
        _write_summary(path, parts, statuses)
    except Exception as exc:
        if not (isinstance(exc, (OSError, ValueError))
                or type(exc).__module__.startswith("pyarrow")):
            raise
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
            " ".join(str(exc).split())[:200]
        raise TableError(f"cannot write the table {path}: {why}") from None


def _write_summary(path: Path, parts: Iterable[tuple[str, Path | None]],
                   statuses: Iterable[Mapping[str, Any]]) -> None:
    faces = TableWriter(path, FACE_COLUMNS)
    try:
        for recording, part in parts:
            if part is None:
                continue
            with open(part, newline="") as file:
                reader = csv.reader(file)
                next(reader, None)  # the header
                while True:
                    block = [row for _, row in zip(range(50_000), reader)]
                    if not block:
                        break
                    faces.rows(face_rows(recording, block))
        faces.close()
    except BaseException:
        faces.abort()
        raise
    table = TableWriter(recordings_path(path), RECORDING_COLUMNS)
    try:
        table.rows([s.get(c) for c in RECORDING_COLUMNS] for s in statuses)
        table.close()
    except BaseException:
        table.abort()
        raise


def part_cells(chunk: int, rows: Iterable[FaceRow]) -> list[list[str]]:
    """A part file's rows (:data:`PART_COLUMNS`)."""
    return [[str(chunk), *csv_cells(r)] for r in rows]
