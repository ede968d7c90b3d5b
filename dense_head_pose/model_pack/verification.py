"""Checks of the pack's files: against the manifest's sizes and SHA-256, and the files made
here (:data:`~.manifest.LOCAL_FILES`) against the hash recorded beside each."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable
from pathlib import Path

from ..errors import ModelError
from .manifest import (
    FETCH_HINT,
    HASH_SUFFIX,
    INT8_REGRESSOR,
    LOCAL_FILES,
    ModelFile,
    load_manifest,
)

_CHUNK = 1 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file ("missing", "a directory", ...);
    None for a regular file (a symlink to one included)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing" if not path.is_symlink() else "a broken symlink"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
    return f"not a regular file ({kind})"


def check_file(path: Path, entry: ModelFile) -> str | None:
    """Return ``None`` when ``path`` matches the manifest entry, else what is wrong with it."""
    problem = not_a_file(path)
    if problem:
        return problem
    size = path.stat().st_size
    if size != entry.bytes:
        return f"size {size} bytes, expected {entry.bytes} (truncated or wrong file)"
    try:
        digest = sha256(path)
    except OSError as exc:  # e.g. another user's file, mode 0600
        return f"unreadable ({exc.strerror})"
    if digest != entry.sha256:
        return f"SHA-256 {digest[:16]}..., expected {entry.sha256[:16]}... (corrupt or wrong file)"
    return None


def recorded_hash_problem(path: Path) -> str | None:
    """What is wrong with a :data:`LOCAL_FILES` file against the SHA-256 recorded beside it
    when it was written; None if it matches."""
    problem = not_a_file(path)
    if problem:
        return problem
    record = path.with_name(path.name + HASH_SUFFIX)
    try:
        recorded = record.read_text(encoding="ascii").split()[0].lower()
        actual = sha256(path)
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        return f"its recorded hash {record.name} is missing or unreadable ({exc})"
    if actual != recorded:
        return (f"changed since it was written (SHA-256 {actual[:12]}..., recorded "
                f"{recorded[:12]}...)")
    return None


def require_recorded(path: Path) -> None:
    """:class:`ModelError`, with the command that makes the file again, unless ``path`` (a
    :data:`LOCAL_FILES` file) matches its recorded SHA-256."""
    problem = recorded_hash_problem(path)
    if problem:
        remake = LOCAL_FILES.get(path.name, FETCH_HINT)
        raise ModelError(f"{path}: {problem}; make it again: {remake} --dest {path.parent}"
                         if path.name == INT8_REGRESSOR else
                         f"{path}: {problem}; make it again: {remake} --models {path.parent}")


def verify(directory: Path, entries: Iterable[ModelFile] | None = None,
           local: bool = True) -> dict[str, str | None]:
    """Check every manifest file in ``directory``, and (``local``) each :data:`LOCAL_FILES`
    file that is there (or whose hash record is); map file name to problem or ``None``."""
    entries = list(entries) if entries is not None else load_manifest()
    out = {e.name: check_file(directory / e.name, e) for e in entries}
    for name in LOCAL_FILES if local else ():
        path = directory / name
        if path.exists() or path.is_symlink() or path.with_name(name + HASH_SUFFIX).exists():
            out[name] = recorded_hash_problem(path)
    return out


