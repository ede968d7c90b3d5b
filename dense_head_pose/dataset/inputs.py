"""A dataset's recordings from what the user names: paths, directories searched, ``@LIST``.

``bag`` and ``video`` take many inputs. Each argument is one of:

* a path to a recording (a bag directory, an ``.mcap`` / ``.db3`` / ``.bag`` file, a video);
* a directory that is not itself a recording: searched, depth first in name order, for
  recordings (a bag directory is one recording: not searched further), each real directory
  once (a symlink back up the tree is not followed again);
* ``@LIST``: a text file (or a pipe) of such paths, one a line (blank lines and lines
  starting with ``#`` skipped; relative paths are relative to the list's own directory, so a
  list travels with its dataset), at most :data:`MAX_LIST_LINES` lines of
  :data:`MAX_LINE_BYTES` bytes.

A directory is one bag when it is one: it holds ``metadata.yaml``, or storage files that
are one recording cut off before its metadata was written (one file, or rosbag2's split
files ``<directory>_<n>.mcap``). Loose storage files side by side are a recording each.

A path that does not exist is kept: the command reports it as that input's failure, the
others are processed. A list that cannot be read is an :class:`InputListError` (one line,
exit 2).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import DenseHeadPoseError

BAG_SUFFIXES = (".mcap", ".db3", ".bag")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
#: The longest ``@LIST`` read (lines), and its longest line (bytes): a larger one is refused,
#: not loaded (``@/dev/zero`` is one endless line).
MAX_LIST_LINES = 1_000_000
MAX_LINE_BYTES = 16 << 10
_STORAGE = (".mcap", ".db3")


class InputListError(DenseHeadPoseError, ValueError):
    """An ``@LIST`` that cannot be read, or inputs that name no recording at all."""


def is_bag_directory(path: Path) -> bool:
    """A rosbag2 directory (see module)."""
    if (path / "metadata.yaml").is_file():
        return True
    try:
        storages = [p for p in path.iterdir() if p.suffix in _STORAGE and p.is_file()]
    except OSError:
        return False
    split = re.compile(rf"{re.escape(path.name)}_\d+({'|'.join(map(re.escape, _STORAGE))})")
    return len(storages) == 1 or (len(storages) > 1 and all(split.fullmatch(p.name)
                                                             for p in storages))


def _search(directory: Path, kind: str, seen: set[str]) -> Iterator[Path]:
    real = os.path.realpath(directory)
    if real in seen:  # a symlink back up the tree, or to a directory searched already
        return
    seen.add(real)
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden, and this package's own records
        if entry.is_dir():
            if kind == "bag" and is_bag_directory(entry):
                yield entry
            else:
                yield from _search(entry, kind, seen)
        elif entry.is_file() and entry.suffix.lower() in (
                BAG_SUFFIXES if kind == "bag" else VIDEO_SUFFIXES):
            yield entry


def _read_list(argument: str) -> list[str]:
    path = Path(argument[1:])
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise InputListError(f"{argument}: a directory, not a list (give the directory "
                                 "itself to search it)")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise InputListError(f"{argument}: not a regular file or a pipe")
        with path.open("rb") as file:
            lines: list[str] = []
            while (line := _list_line(argument, file, len(lines))) is not None:
                lines.append(line)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputListError(f"{argument}: cannot read the list ({why})") from None
    base = path.parent
    return [line if os.path.isabs(line) else str(base / line)
            for line in lines if line and not line.startswith("#")]


def _list_line(argument: str, file: Any, number: int) -> str | None:
    """The list's next line (None at its end); InputListError past the limits."""
    raw = file.readline(MAX_LINE_BYTES + 1)
    if not raw:
        return None
    if number >= MAX_LIST_LINES:
        raise InputListError(f"{argument}: more than {MAX_LIST_LINES} lines")
    if len(raw) > MAX_LINE_BYTES:
        raise InputListError(f"{argument}: line {number + 1} is longer than {MAX_LINE_BYTES} "
                             "bytes: not a list of paths")
    return raw.decode("utf-8").strip()


def expand_inputs(arguments: Sequence[str], kind: str) -> list[str]:
    """The recordings ``arguments`` name (see the module docstring), in the order given,
    each once. ``kind``: ``"bag"`` or ``"video"``. A camera index (``video 0``) is kept."""
    if kind not in ("bag", "video"):
        raise ValueError(f"kind must be bag or video, got {kind!r}")
    found: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.realpath(path) if os.path.exists(path) else path
        if key not in seen:
            seen.add(key)
            found.append(path)

    for argument in arguments:
        names = _read_list(argument) if argument.startswith("@") else [argument]
        for name in names:
            path = Path(name)
            if path.is_dir() and not (kind == "bag" and is_bag_directory(path)):
                before = len(found)
                for recording in _search(path, kind, set()):
                    add(str(recording))
                if len(found) == before:
                    raise InputListError(f"{name}: a directory holding no "
                                         f"{'bag' if kind == 'bag' else 'video'} "
                                         f"(searched for {', '.join(_wanted(kind))})")
            else:
                add(name)
    if not found:
        raise InputListError("no input: the list(s) given are empty")
    return found


def searched_directories(arguments: Sequence[str], kind: str) -> list[str]:
    """The directories among ``arguments`` (and in their lists) that are searched for
    recordings: no output may lie inside one (a later search would take it for an input)."""
    out = []
    for argument in arguments:
        names = _read_list(argument) if argument.startswith("@") else [argument]
        out += [n for n in names if Path(n).is_dir()
                and not (kind == "bag" and is_bag_directory(Path(n)))]
    return out


def _wanted(kind: str) -> tuple[str, ...]:
    if kind == "bag":
        return ("bag directories", *BAG_SUFFIXES)
    return VIDEO_SUFFIXES
