"""Stop signals and the lifetime of this package's processes, in one place.

Every process this package runs stops the same few ways, and each way is written once here:

* **A command** (``dense-head-pose ...``): Ctrl-C raises ``KeyboardInterrupt``, SIGTERM
  (``timeout``, systemd, ``docker stop``) and SIGHUP (a closed terminal) raise
  :class:`Interrupted` where the program is (:func:`raise_on_stop_signals`), so that
  ``finally`` blocks close the outputs and the exit status names the signal. The outputs of
  one frame, written in several steps, are written whole or not at all: a signal that comes
  meanwhile is held and acted on at the end of the block (:func:`stop_signals_held`). A loop
  that waits on worker processes or a cluster holds them too, around each wait: a handler
  raising inside a queue's or an executor's own lock handling can leave a lock held or a
  wake-up lost for ever.
* **A worker process of a command** (``--jobs``): a stop is only recorded
  (:class:`StopFlag`) and acted on after the frame in hand; a worker whose parent dies
  (SIGKILL, a crash) gets SIGTERM from the kernel (:func:`die_with_parent`), closes its
  outputs and exits instead of waiting for work that will never come.
* **A ROS node**: a stop is recorded, never raised (``ros.process`` spins until it sees
  one); once cleaning up, later signals are ignored (:func:`ignore_stop_signals`); a node
  started by a launch file dies with that launch (:func:`die_with_parent`). The executables'
  first lines (:func:`end_quietly_on_stop`) end the process quietly if a stop comes while
  Python and ROS are still loading.

Only the main thread receives signals in Python; elsewhere these hold nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised where the program is so that ``finally`` blocks run (a
    video being written is finished) and the exit status says which signal it was."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def raise_on_stop_signals() -> None:
    """A command's handlers: SIGTERM and SIGHUP raise :class:`Interrupted` (Ctrl-C keeps
    Python's ``KeyboardInterrupt``); a signal ignored by our parent (``nohup``) stays
    ignored. Call again after a library installed its own (Ray's driver does)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_interrupted)


def act_on(signum: int) -> None:
    """Raise what a stop by ``signum`` raises in a command (see module)."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[list[int]]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then act on the first that came
    with the handler that was there before (the list yielded holds the signals that came,
    so a waiting loop can leave its block early). A signal that is ignored or not handled
    from Python is left as it is."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous: dict[int, object] = {}

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    try:
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler) or handler == signal.SIG_DFL:
                previous[signum] = handler
                signal.signal(signum, lambda number, frame: came.append(number))
    except BaseException:  # a signal that came just before, acted on by its own handler
        restore()
        raise
    try:
        yield came
    finally:
        restore()
        if came:
            handler = previous[came[0]]
            if callable(handler):
                handler(came[0], None)
            else:
                signal.raise_signal(came[0])


class StopFlag:
    """Records a stop signal without raising; :meth:`check` raises it where the caller
    chooses (a worker, after the frame in hand). A handler that raised wherever the process
    was could land inside a queue's ``put``, between a wake-up of its feeder thread and the
    bookkeeping of that wake-up: every later wake-up, the one that ends the feeder at exit
    included, then went to the wrong waiter and the process never exited."""

    def __init__(self, on_stop: Callable[[int], None] | None = None) -> None:
        self.signum: int | None = None
        self._on_stop = on_stop

    def __call__(self, signum: int, frame: object = None) -> None:
        if self.signum is None:
            self.signum = signum
            if self._on_stop is not None:
                self._on_stop(signum)

    def install(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """Record ``signals`` from now on (main thread only)."""
        for signum in signals:
            signal.signal(signum, self)

    def check(self) -> None:
        """Raise the stop recorded, if any (:func:`act_on`)."""
        if self.signum is not None:
            act_on(self.signum)


def ignore_stop_signals(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """From now on ``signals`` change nothing (a process cleaning up; Python's finalisation
    would otherwise put the default action back, and SIGTERM would kill it mid-exit)."""
    for signum in signals:
        signal.signal(signum, signal.SIG_IGN)


def end_quietly_on_stop() -> None:
    """The first lines of an executable: a stop while Python and ROS are still loading ends
    the process at once, as a stop does later, without a traceback. ``os._exit``, because a
    ``SystemExit`` raised inside the import machinery's own callbacks is printed as
    "Exception ignored" and swallowed, and the start then goes on."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: os._exit(0))


def default_stop_signals() -> None:
    """Ctrl-C and SIGTERM back to their default actions (a child process started from one
    that records them, before it sets up its own)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def die_with_parent(parent: int | None = None, signum: int = signal.SIGTERM) -> bool:
    """Ask Linux for ``signum`` when this process's parent dies (``PR_SET_PDEATHSIG``), so a
    parent killed outright (SIGKILL, a crash) leaves no child behind; False if the parent
    is already gone (``parent``: its expected pid; this process was then re-parented
    before the request). Elsewhere than on Linux it does nothing and returns True."""
    if not sys.platform.startswith("linux"):
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):
        return True
    return parent is None or os.getppid() == parent


_NO_FINALISATION = False


def skip_finalisation() -> None:
    """End the process without Python's finalisation (:func:`end`): a library whose
    threads cannot survive it (Ray's driver with its cluster's head gone crashes there)."""
    global _NO_FINALISATION
    _NO_FINALISATION = True


def end(status: int) -> int:
    """``status``, or, after :func:`skip_finalisation`, the process ended at once with it
    (standard streams flushed first)."""
    if _NO_FINALISATION:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        os._exit(status)
    return status
