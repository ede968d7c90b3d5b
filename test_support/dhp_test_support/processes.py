"""Child processes of a test: their signals, their process groups, and orphans."""

from __future__ import annotations

import contextlib
import ctypes
import signal
from collections.abc import Iterator
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36


def default_signals() -> None:
    """``preexec_fn`` of a child that a test stops with a signal: SIGINT and SIGTERM back to
    their default action, as from a terminal (a test runner started in the background passes
    SIGINT on as ignored, and a child would then never see a Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _set_subreaper(on: bool) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


@contextlib.contextmanager
def subreaper() -> Iterator[None]:
    """While the block runs, this process adopts its orphaned descendants (Linux), so a test
    can reap a node whose launch process died and learn its exit status instead of losing it
    to init. Cleared on exit: a test process that stayed a subreaper would adopt every
    orphan of the later tests (the workers of a command those tests kill, say), which then
    look alive to them."""
    _set_subreaper(True)
    try:
        yield
    finally:
        _set_subreaper(False)


def group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members
