"""rosbag2 files read without ROS, whatever state a recording ended in.

Reading goes through ``rosbags`` (rosbag2 sqlite3 and MCAP, ROS 1 bags too). A recording
that was killed is another matter: rosbag2 writes ``metadata.yaml`` when it closes the bag,
and an MCAP file's summary and footer likewise, so a killed ``ros2 bag record`` leaves files
``rosbags`` refuses. :func:`open_bag` then reads the storage files themselves, as far as they
go: an sqlite3 file's ``topics`` and ``messages`` tables, an MCAP file's records one by one
(the ``mcap`` library's stream reader: it needs no footer) until the first unreadable byte.
Only that tail is lost, and :attr:`BagInput.problems` says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bag_types import BagError, require_rosbags


@dataclass
class Topic:
    """A topic of an input bag: its type and how many messages it says it has (None when
    unknown: a recovered recording)."""

    name: str
    msgtype: str
    count: int | None


@dataclass
class BagInput:
    """An opened input bag: its topics, and its messages in recording order."""

    path: Path
    topics: dict[str, Topic]
    recovered: str | None = None
    """How a recording without its index was read (None: it was whole)."""
    problems: list[str] = field(default_factory=list)
    """What could not be read (a cut-off tail, a corrupt record)."""
    _reader: Any = None
    _store: Any = None

    def messages(self, topics: set[str], start: int | None = None, stop: int | None = None
                 ) -> Iterator[tuple[str, str, int, bytes]]:
        """``(topic, msgtype, log time in ns, serialized data)`` of ``topics`` logged in
        [``start``, ``stop``) (None: unbounded), in recording order, until the end or the
        first unreadable part (then noted in :attr:`problems`)."""
        if self._reader is not None:
            yield from self._messages_rosbags(topics, start, stop)
            return
        for storage in _storage_files(self.path):
            reading = (_sqlite_messages if storage.suffix == ".db3" else _mcap_messages)
            try:
                for message in reading(storage, topics):
                    if (start is None or message[2] >= start) and (
                            stop is None or message[2] < stop):
                        yield message
            except Exception as exc:  # whatever a damaged file raises: the rest is lost
                self.problems.append(f"{storage.name}: unreadable from here on "
                                     f"({_reason(exc)})")
                return

    def time_span(self) -> tuple[int, int] | None:
        """``(first, last)`` log time in ns from the index; None for a recording read
        without one (cut off) or holding no message."""
        if self._reader is None or not self._reader.message_count:
            return None
        return int(self._reader.start_time), int(self._reader.end_time)

    def _messages_rosbags(self, topics: set[str], start: int | None, stop: int | None
                          ) -> Iterator[tuple[str, str, int, bytes]]:
        connections = [c for c in self._reader.connections if c.topic in topics]
        if not connections:
            return
        try:
            for connection, log_ns, data in self._reader.messages(
                    connections=connections, start=start, stop=stop):
                yield connection.topic, connection.msgtype, log_ns, bytes(data)
        except Exception as exc:  # whatever a damaged file raises: the rest is lost
            self.problems.append(f"unreadable from here on ({_reason(exc)})")

    def deserialize(self, data: bytes, msgtype: str) -> Any:
        """A message from its bytes (ROS 2 CDR, or ROS 1 for a ROS 1 bag)."""
        if self._reader is not None:
            return self._reader.deserialize(data, msgtype)
        return self._store.deserialize_cdr(data, msgtype)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _unreadable() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.DatabaseError, OSError, EOFError, ValueError,
                                         KeyError, IndexError]
    try:
        from rosbags.highlevel import AnyReaderError
        from rosbags.rosbag2 import ReaderError

        errors += [ReaderError, AnyReaderError]
    except ImportError:
        pass
    try:
        from mcap.exceptions import McapError

        errors.append(McapError)
    except ImportError:
        pass
    import struct

    errors.append(struct.error)
    return tuple(errors)


_UNREADABLE = _unreadable()


def open_bag(path: str | Path, store: Any) -> BagInput:
    """Open a bag (a rosbag2 directory, an .mcap or .db3 file, a ROS 1 .bag) for reading,
    recovering a recording that was cut off (see the module docstring)."""
    require_rosbags()
    from rosbags.highlevel import AnyReader

    path = Path(path)
    _check_input(path)
    try:
        reader = AnyReader([path], default_typestore=store)
        reader.open()
    except Exception as exc:  # rosbags raises many kinds on a damaged bag
        why = _reason(exc).rstrip(".")
        if path.is_dir() and not (path / "metadata.yaml").exists():
            why = "no metadata.yaml: the recording was not closed"
        storages = _storage_files(path)
        if not storages:
            raise BagError(f"{path}: not a bag ({why})") from None
        topics = {}
        for storage in storages:
            try:
                found = (_sqlite_topics(storage) if storage.suffix == ".db3"
                         else _mcap_topics(storage))
            except Exception as inner:  # whatever a damaged file raises
                raise BagError(f"{storage}: not readable as a bag ({why}; then "
                               f"{_reason(inner)})") from None
            topics.update(found)
        return BagInput(path, topics, recovered=f"read without its index ({why})",
                        _store=store)
    topics = {}
    for c in reader.connections:
        known = topics.get(c.topic)
        count = c.msgcount + (known.count or 0 if known else 0)
        topics[c.topic] = Topic(c.topic, c.msgtype, count)
    return BagInput(path, topics, _reader=reader, _store=store)


def _check_input(path: Path) -> None:
    """BagError unless ``path`` is a directory or a regular file (a device, a FIFO or a
    socket would be read forever or fail deep inside a reader)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BagError(f"{path}: no such bag") from None
    except OSError as exc:
        raise BagError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "special")
        raise BagError(f"{path}: not a bag ({kind}, not a directory or a regular file)")
    if stat.S_ISDIR(mode) and not os.access(path, os.R_OK | os.X_OK):
        raise BagError(f"{path}: cannot read the directory")
    if stat.S_ISREG(mode) and not os.access(path, os.R_OK):
        raise BagError(f"{path}: cannot read the file")
    for storage in _storage_files(path) if stat.S_ISDIR(mode) else []:
        if not storage.is_file():
            raise BagError(f"{storage}: not a regular file")


def _storage_files(path: Path) -> list[Path]:
    """The storage files of a bag directory (or the file itself), in name order."""
    if path.is_file():
        return [path] if path.suffix in (".db3", ".mcap") else []
    return sorted(p for p in path.iterdir() if p.suffix in (".db3", ".mcap"))


@contextlib.contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """``path`` opened read-only. A file cut short (a copy that did not finish) is refused
    whole by SQLite ("malformed": its header counts pages that are gone); a copy padded
    back to that size with empty pages reads up to the cut, so that is what is opened then
    (in the temporary directory, removed afterwards)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        with tempfile.TemporaryDirectory(prefix="dense_head_pose_bag_") as tmp:
            padded = Path(tmp) / path.name
            shutil.copyfile(path, padded)
            header = padded.read_bytes()[:100] if padded.stat().st_size >= 100 else b""
            if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
                raise
            page_size = int.from_bytes(header[16:18], "big")
            page_size = 65536 if page_size == 1 else page_size
            pages = int.from_bytes(header[28:32], "big")
            with padded.open("r+b") as f:
                f.truncate(max(pages * page_size, padded.stat().st_size))
            db = sqlite3.connect(f"file:{padded}?mode=ro", uri=True)
            try:
                yield db
            finally:
                db.close()
        return
    try:
        yield db
    finally:
        db.close()


def _sqlite_topics(path: Path) -> dict[str, Topic]:
    with _sqlite(path) as db:
        rows = db.execute("SELECT name, type FROM topics").fetchall()
    return {name: Topic(name, msgtype, None) for name, msgtype in rows}


def _sqlite_messages(path: Path, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
    with _sqlite(path) as db:
        ids = {i: (name, msgtype) for i, name, msgtype in
               db.execute("SELECT id, name, type FROM topics") if name in topics}
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        # in insertion (recording) order: a scan that stops at the first unreadable row,
        # where sorting would need every row first
        rows = db.execute(f"SELECT topic_id, timestamp, data FROM messages WHERE topic_id IN "
                          f"({marks}) ORDER BY id", list(ids))
        for topic_id, log_ns, data in rows:
            name, msgtype = ids[topic_id]
            yield name, msgtype, int(log_ns), bytes(data)


def _mcap_records(path: Path) -> Iterator[Any]:
    try:
        from mcap.stream_reader import StreamReader
    except ImportError:
        raise BagError(f"{path}: reading a recording that was cut off needs mcap: pip install "
                       f"'dense_head_pose[bag]'") from None
    with path.open("rb") as stream:
        yield from StreamReader(stream, skip_magic=False, emit_chunks=False,
                                validate_crcs=True).records


def _mcap_topics(path: Path) -> dict[str, Topic]:
    from mcap.records import Channel, Message, Schema

    schemas: dict[int, str] = {}
    topics = {}
    try:
        for record in _mcap_records(path):
            if isinstance(record, Schema):
                schemas[record.id] = record.name
            elif isinstance(record, Channel):
                topics[record.topic] = Topic(record.topic, schemas.get(record.schema_id, ""),
                                             None)
            elif isinstance(record, Message):
                continue
    except _UNREADABLE:
        pass  # the topics announced before the cut
    return topics


def _mcap_messages(path: Path, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
    from mcap.records import Channel, Message, Schema

    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    for record in _mcap_records(path):
        if isinstance(record, Schema):
            schemas[record.id] = record.name
        elif isinstance(record, Channel):
            channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
        elif isinstance(record, Message):
            topic, msgtype = channels.get(record.channel_id, ("", ""))
            if topic in topics:
                yield topic, msgtype, int(record.log_time), bytes(record.data)


