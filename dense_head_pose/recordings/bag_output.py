"""rosbag2 files written without ROS: ``rosbags``' writer (format version 9, with each
type's RIHS01 hash as the live publishers' have them), with the type store of
:func:`~.bag_types.typestore`, closed whole whatever stops the run."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from .bag_types import BagError, require_rosbags
from .rows import OutputFullError, disk_full

#: Free bytes an output's disk must keep: what closing the outputs still writes (the MCAP
#: chunk held in memory, up to 1 MiB, its index and summary, ``metadata.yaml``) with room to
#: spare. Below it the run stops, with every output closed and whole.
FREE_SPACE_MARGIN = 4 << 20


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still put on the file system of ``path``."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


class BagOutput:
    """A rosbag2 output bag; a connection per topic, made at its first message.

    ``close()`` writes the index and ``metadata.yaml``: whatever stopped the run (the end,
    Ctrl-C, SIGTERM, an error, a disk that filled up), the caller closes it and the bag
    holds everything written. A write the disk cannot take (another program filled it
    between two :func:`free_bytes` checks) loses the bag's index: it is then read back as a
    recording that was cut off (:func:`open_bag`), up to the last whole chunk.
    """

    def __init__(self, path: str | Path, store: Any, storage: str = "mcap") -> None:
        require_rosbags()
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        path = Path(path)
        if path.exists():
            raise BagError(f"{path} exists: give a new path for the output bag")
        self.path = path
        self.store = store
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        try:
            self._writer = Writer(path, version=9, storage_plugin=plugin)
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot write {path}: {exc}") from None
        self._connections: dict[str, Any] = {}
        self.written = 0

    def write(self, topic: str, msgtype: str, message: Any, log_ns: int) -> None:
        if self._writer is None:
            raise BagError(f"{self.path} is closed")
        try:
            connection = self._connections.get(topic)
            if connection is None:
                connection = self._writer.add_connection(topic, msgtype, typestore=self.store)
                self._connections[topic] = connection
            self._writer.write(connection, log_ns, self.store.serialize_cdr(message, msgtype))
        except (OSError, sqlite3.Error) as exc:
            self._abort()
            if disk_full(exc):
                raise OutputFullError(f"{self.path}: the disk filled up while writing; the "
                                      "bag is readable up to its last whole chunk") from None
            raise BagError(f"cannot write {self.path}: {exc}") from None
        self.written += 1

    def _abort(self) -> None:
        writer, self._writer = self._writer, None
        with contextlib.suppress(Exception):
            writer.abort()

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except (OSError, sqlite3.Error) as exc:
                raise BagError(f"cannot finish {self.path}: {exc}") from None
