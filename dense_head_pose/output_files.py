"""Output files of the commands: checked before any work, never written over an input.

Every command that writes a file takes its paths from the user, and a wrong one must cost
nothing: each output is checked before the first frame is read (its directory exists and
takes a new file, its type can be written) and refused if it resolves to one of the inputs,
through a symlink or a hard link, or lies inside an input directory (a recording is a
directory). A plot is written to the path checked: a name without an extension gets
``.png``, the name matplotlib would have written. One frame's outputs (a bag's messages
and CSV rows) are written whole or not at all: a stop signal waits for them
(:func:`~dense_head_pose.lifetime.stop_signals_held`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".webp", ".eps", ".ps", ".tif",
                 ".tiff")
"""What ``--plot`` writes (matplotlib's Agg formats, Pillow's included)."""


class OutputPathError(ValueError):
    """An output path that breaks a rule; the message names the option and the fix."""


def resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` with every symlink resolved, made absolute (the file that would be written)."""
    return Path(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    if resolved(a) == resolved(b):
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)  # a hard link
    except OSError:
        return False


def refuse_inputs(option: str, output: str | os.PathLike[str],
                  inputs: Iterable[str | os.PathLike[str]]) -> None:
    """:class:`OutputPathError` if ``output`` is one of ``inputs`` or lies inside an input
    directory: inputs are never written over."""
    target = resolved(output)
    for given in inputs:
        if isinstance(given, str) and given.isdigit():
            continue  # a camera index
        source = Path(given)
        if _same_file(Path(output), source):
            raise OutputPathError(f"{option} {output} is the input {given}: inputs are never "
                                  "written over; give another path")
        real = resolved(source)
        if real.is_dir() and target.is_relative_to(real):
            raise OutputPathError(f"{option} {output} lies inside the input {given}: outputs "
                                  "never go into an input; give a path outside it")


def plot_path(path: str | os.PathLike[str]) -> Path:
    """The file ``--plot PATH`` writes: ``PATH``, or ``PATH.png`` without an extension;
    :class:`OutputPathError` for a type that cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"--plot {path} is a directory: give a file name")
    if not path.suffix:
        return path.with_name(path.name + ".png")
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise OutputPathError(f"--plot {path}: cannot write {path.suffix} files; give a name "
                              f"ending in {', '.join(PLOT_SUFFIXES[:4])}, ...")
    return path


def check_new_file(option: str, path: str | os.PathLike[str], overwrite: bool = False) -> None:
    """:class:`OutputPathError` unless ``path`` can be created as a new file now: its
    directory exists and takes a file (a read-only mount, a full disk or missing rights are
    found by creating and removing one), and, unless ``overwrite``, it does not exist."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if path.is_dir():
            raise OutputPathError(f"{option} {path} is a directory: give a file name")
        if not overwrite:
            raise OutputPathError(f"{option} {path} exists: outputs are never written over")
    check_directory_writable(option, path.parent if str(path.parent) else Path("."), path)


def check_directory_writable(option: str, directory: Path, shown: Path | None = None) -> None:
    """:class:`OutputPathError` unless a file can be created in ``directory`` now."""
    shown = shown or directory
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise OutputPathError(f"{option} {shown}: the directory {directory} {what}")
    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".dense_head_pose_check_"):
            pass
    except OSError as exc:
        raise OutputPathError(f"{option} {shown}: cannot write into {directory} "
                              f"({exc.strerror or exc})") from None


def make_directory(option: str, directory: str | os.PathLike[str]) -> Path:
    """Create ``directory`` (and its parents) for outputs; :class:`OutputPathError` if it
    cannot be created or written into."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{option} {directory}: cannot create the directory "
                              f"({exc.strerror or exc})") from None
    check_directory_writable(option, directory)
    return directory


def input_stem(path: str | os.PathLike[str],
               suffixes: tuple[str, ...] = (".mcap", ".db3", ".bag")) -> str:
    """A name for the outputs of an input: its own name without a storage suffix, taken
    from the resolved path (``.`` is named after the directory it is)."""
    name = resolved(path).name or "root"
    for suffix in suffixes:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name
