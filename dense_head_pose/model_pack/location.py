"""Where the pack is: the search path, the pack the commands load (:func:`locate`), and
where a build writes without ``--dest``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelError
from .manifest import (
    ENV_VAR,
    FETCH_HINT,
    MANIFEST_NAME,
    PACKAGE_NAME,
    load_manifest,
    package_dir,
    share_dirs,
)
from .verification import verify


def user_data_dir() -> Path:
    """Per-user location used by ``models build``/``fetch`` when nothing else is writable."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / PACKAGE_NAME / "models"


def search_path(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for the pack, in order of precedence."""
    if explicit:
        return [Path(explicit)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]
    return [*share_dirs(), package_dir().parent / "models", user_data_dir()]


def locate(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Find a complete, verified model pack.

    Precedence: ``explicit`` (``--models DIR``) > ``$DENSE_HEAD_POSE_MODELS`` > the installed
    package's share directory > the source tree's ``models/`` > the per-user data directory.
    The first directory holding any pack file is the one used and must be complete: silently
    skipping a corrupt pack for another one would hide the corruption.
    """
    entries = load_manifest()
    candidates = search_path(explicit)
    for directory in candidates:
        if directory.exists() and not directory.is_dir():
            raise ModelError(f"{directory} is not a directory (the model pack is a directory "
                             f"of files); point --models / ${ENV_VAR} at one")
        if any((directory / e.name).exists() for e in entries):
            # the optional files are checked when they are loaded (and by models check)
            problems = {k: v for k, v in verify(directory, entries, local=False).items() if v}
            if problems:
                detail = "; ".join(f"{directory / k}: {v}" for k, v in problems.items())
                raise ModelError(f"model pack in {directory} is incomplete: {detail}. "
                                 f"Repair it with: {FETCH_HINT} --dest {directory}")
            return directory
    searched = ", ".join(str(d) for d in candidates)
    raise ModelError(f"no model pack found (searched {searched}). Build it with: {FETCH_HINT} "
                     "(downloads its upstream files; --from DIR for local copies)")


def default_fetch_dest() -> Path:
    """Where ``models build``/``fetch`` write without ``--dest``, by the rule :func:`locate`
    reads by: ``$DENSE_HEAD_POSE_MODELS``, else the first directory of the search path that
    holds a pack (so a build repairs the very pack the commands load), else the source
    checkout's ``models/`` when writable, else the per-user data directory."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    names = [e.name for e in load_manifest()]
    for directory in search_path():
        if directory.is_dir() and any((directory / n).exists() for n in names):
            return directory
    repo_models = package_dir().parent / "models"
    if (repo_models / MANIFEST_NAME).is_file() and os.access(repo_models, os.W_OK):
        return repo_models
    return user_data_dir()


def describe(directory: Path) -> str:
    """Which place of the search path ``directory`` is, for the commands' messages."""
    def same(a: Path, b: Path) -> bool:
        return os.path.realpath(a) == os.path.realpath(b)

    directory = Path(directory)
    if os.environ.get(ENV_VAR) and same(Path(os.environ[ENV_VAR]), directory):
        return f"${ENV_VAR}"
    if any(same(d, directory) for d in share_dirs()):
        return "the installed package's share directory"
    if same(directory, package_dir().parent / "models"):
        return "the source checkout"
    if same(directory, user_data_dir()):
        return "the per-user data directory"
    return "given"


