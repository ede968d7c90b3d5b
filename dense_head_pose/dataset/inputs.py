"""A dataset's recordings from what the user names: paths, directories searched, ``@LIST``.

``bag`` and ``video`` take many inputs. Each argument is one of:

* a path to a recording (a bag directory, an ``.mcap`` / ``.db3`` / ``.bag`` file, a video);
* a directory that is not itself a recording: searched, depth first in name order, for
  recordings (a bag directory is one recording: not searched further);
* ``@LIST``: a text file of such paths, one a line (blank lines and lines starting with
  ``#`` skipped; relative paths are relative to the list's own directory, so a list travels
  with its dataset).

A path that does not exist is kept: the command reports it as that input's failure, the
others are processed. A list that cannot be read is an :class:`InputListError` (one line,
exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import DenseHeadPoseError

BAG_SUFFIXES = (".mcap", ".db3", ".bag")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
#: The longest ``@LIST`` read (lines); a larger file is refused, not loaded.
MAX_LIST_LINES = 1_000_000


class InputListError(DenseHeadPoseError, ValueError):
    """An ``@LIST`` that cannot be read, or inputs that name no recording at all."""


def is_bag_directory(path: Path) -> bool:
    """A rosbag2 directory: its ``metadata.yaml``, or storage files directly inside (a
    recording that was cut off before its metadata was written)."""
    if (path / "metadata.yaml").is_file():
        return True
    try:
        return any(p.suffix in (".mcap", ".db3") and p.is_file() for p in path.iterdir())
    except OSError:
        return False


def _search(directory: Path, kind: str) -> Iterator[Path]:
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue  # hidden, and this package's own partial outputs
        if entry.is_dir():
            if kind == "bag" and is_bag_directory(entry):
                yield entry
            else:
                yield from _search(entry, kind)
        elif entry.is_file() and entry.suffix.lower() in (
                BAG_SUFFIXES if kind == "bag" else VIDEO_SUFFIXES):
            yield entry


def _read_list(argument: str) -> list[str]:
    path = Path(argument[1:])
    try:
        with path.open(encoding="utf-8") as file:
            lines = []
            for number, line in enumerate(file):
                if number >= MAX_LIST_LINES:
                    raise InputListError(f"{argument}: more than {MAX_LIST_LINES} lines")
                lines.append(line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputListError(f"{argument}: cannot read the list ({why})") from None
    base = path.parent
    return [line if os.path.isabs(line) else str(base / line)
            for line in lines if line and not line.startswith("#")]


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
                for recording in _search(path, kind):
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
