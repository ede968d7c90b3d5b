"""What makes a run resumable: each input's fingerprint, the run's key, and a record per
finished recording.

A recording is *done* when its outputs were renamed into place whole and then its record
(``<state dir>/<name>.done.json``) was written, naming the input's fingerprint (size,
modification time, SHA-256 of its first and last MiB; for a bag directory, of each of its
files), the run's key (the options that change the outputs, the package version and the
model pack's hashes) and the outputs with their sizes. ``--resume`` skips exactly the inputs
whose record matches all of that and names every output asked of them now, each still
there, of the size recorded: what the records cannot prove done is done again (a new output
asked, a part of the table deleted, a record that is not one).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Bytes hashed at the head and at the tail of each input file.
HASHED_BYTES = 1 << 20
STATE_DIR = ".dense_head_pose"


def _file_fingerprint(path: Path) -> dict[str, Any]:
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):  # a FIFO or a device: read forever, or never
        raise OSError(f"{path} is not a regular file")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        digest.update(file.read(HASHED_BYTES))
        if info.st_size > HASHED_BYTES:
            file.seek(max(HASHED_BYTES, info.st_size - HASHED_BYTES))
            digest.update(file.read(HASHED_BYTES))
    return {"bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": digest.hexdigest()}


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The input's fingerprint (see the module docstring); None if it cannot be read (the
    run then reports the input's own error)."""
    path = Path(path)
    try:
        if path.is_dir():
            return {"files": {p.name: _file_fingerprint(p) for p in sorted(path.iterdir())
                              if p.is_file() and not p.name.startswith(".")}}
        return _file_fingerprint(path)
    except OSError:
        return None


def run_key(options: Mapping[str, Any]) -> str:
    """A digest of what decides a recording's outputs: ``options`` (JSON-able), this
    package's version and the model pack's file hashes."""
    from .. import __version__, model_pack

    pack = {f.name: f.sha256 for f in model_pack.load_manifest()}
    text = json.dumps({"options": options, "version": __version__, "pack": pack},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def output_size(path: Path) -> int | None:
    """Bytes of an output file, or of every file under an output directory; None if gone."""
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return None


class DoneRecords:
    """The records of finished recordings in one state directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.done.json"

    def is_done(self, name: str, print_: Mapping[str, Any] | None, key: str,
                outputs: list[Path]) -> bool:
        """Whether ``name`` finished in a run of key ``key`` from an input that still has
        fingerprint ``print_``, and made every one of ``outputs``, still whole."""
        record = self.record(name)
        if print_ is None or record is None:
            return False
        if record.get("input") != print_ or record.get("key") != key:
            return False
        made = record.get("outputs")
        if not isinstance(made, list):
            return False
        sizes: dict[str, Any] = {}
        for entry in made:
            if not (isinstance(entry, list) and len(entry) == 2):
                return False
            sizes[str(Path(entry[0]).absolute())] = entry[1]
        for path in outputs:
            recorded = sizes.get(str(Path(path).absolute()), -1)
            if recorded is None or output_size(Path(path)) != recorded:
                return False
        return True

    def record(self, name: str) -> dict[str, Any] | None:
        """The record of ``name``, if there is one and it is a record (a JSON object)."""
        try:
            record = json.loads(self._path(name).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def forget(self, name: str) -> None:
        """Before a recording is (re)done: its old record no longer holds."""
        self._path(name).unlink(missing_ok=True)

    def write(self, name: str, print_: Mapping[str, Any] | None, key: str,
              outputs: list[Path], status: Mapping[str, Any]) -> None:
        """Record ``name`` as done (written to a temporary name, then renamed)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {"input": print_, "key": key,
                  "outputs": [[str(Path(p).absolute()), output_size(p)] for p in outputs],
                  "status": status}
        path = self._path(name)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(json.dumps(record, default=str))
        os.replace(partial, path)
