"""Running a node as a process: one orderly shutdown, whatever signals arrive.

A terminal's Ctrl-C reaches every process of its group, and ``ros2 launch`` forwards its own
SIGINT to each node as well, so a node usually receives SIGINT twice, milliseconds apart
(then SIGTERM, then SIGKILL if it is slow to exit). With Python's default handler the second
one raises ``KeyboardInterrupt`` wherever the node happens to be in its clean-up (joining its
threads, ``destroy_node()``, releasing a capture device): a traceback and exit code -2.

:func:`run_node` therefore never lets a signal raise. It installs a Python handler for SIGINT
and SIGTERM *before* ``rclpy.init()``, which only notes that a stop was asked for; rclpy's own
handlers chain to it and wake the executor (on Kilted and Jazzy they also shut the context
down). The node spins in short steps until a stop was noted or the context is gone, then
cleans up with every later signal ignored, and the process exits 0. Shutting the context down
from rclpy's signal thread races with the executor building its next wait set, which then
fails with "the given context is not valid": that, too, is the requested shutdown. SIGKILL,
which launch sends only when a process ignores SIGINT and SIGTERM for 10 s, cannot be caught.

``ros2 launch`` itself exits at once on SIGTERM and leaves its processes running (upstream
launch says so: "using SIGTERM can result in orphaned processes"), and so would a launch that
crashed or was killed. This package's launch files therefore put their own pid in
``DENSE_HEAD_POSE_PARENT_PID``; a node started with it asks Linux for SIGTERM when that
parent dies (``PR_SET_PDEATHSIG``), which ends it the same orderly way. A node started by hand
(``ros2 run``, ``nohup``) is not tied to its parent.

A stop has a deadline. Fast DDS on Jazzy, about once in 40 shutdowns under load, never returns
from ``destroy_node()`` (inside ``rmw_destroy_node``, holding the GIL), and launch then
escalates to SIGTERM and SIGKILL: exit code -9 after 15 s. So 4 s after the stop every
thread's stack is printed (the known hang shows ``destroy_node``), and at 4.5 s, before
launch escalates, the process ends with its exit status. The deadline runs on a thread that
libc starts for a POSIX timer (:class:`ExitDeadline`), because no Python thread can run
while that C call holds the GIL.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
import rclpy.signals
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node

from ..lifetime import StopFlag, die_with_parent, ignore_stop_signals

RCLError = _rclpy.RCLError
PARENT_PID_VARIABLE = "DENSE_HEAD_POSE_PARENT_PID"
# Upper bound on noticing a stop that no rclpy handler woke the executor for (rclpy's signal
# handler does wake it). Each wake-up costs about 1 ms of CPU in rclpy (the wait set of a
# lifecycle node holds a dozen services): every 0.1 s that was 1 % of a core for an idle,
# inactive node; every 0.5 s it is 0.3 %.
_SPIN_STEP_S = 0.5
_HANG_REPORT_S = 4.0
_EXIT_DEADLINE_S = 4.5  # ``ros2 launch`` escalates to SIGTERM 5 s after its SIGINT
_SIGEV_THREAD = 2


class _SigEvent(ctypes.Structure):
    """glibc's ``struct sigevent`` (64 bytes) for ``SIGEV_THREAD``."""

    _fields_ = [("sigev_value", ctypes.c_void_p), ("sigev_signo", ctypes.c_int),
                ("sigev_notify", ctypes.c_int), ("sigev_notify_function", ctypes.c_void_p),
                ("sigev_notify_attributes", ctypes.c_void_p), ("_pad", ctypes.c_byte * 32)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


class ExitDeadline:
    """Ends the process with a status at a deadline, unless it has exited by then.

    A POSIX timer whose expiry makes libc start a thread that calls ``_exit(status)``
    (``SIGEV_THREAD``; the status travels as the timer's ``sigval``): nothing in it needs the
    GIL. Linux with glibc only; elsewhere :meth:`arm` returns False and does nothing.
    """

    def __init__(self) -> None:
        self._timer = ctypes.c_void_p()
        self._armed = False
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._create, self._settime = libc.timer_create, libc.timer_settime
            self._delete, self._exit = libc.timer_delete, ctypes.cast(libc._exit, ctypes.c_void_p)
        except (OSError, AttributeError):  # not glibc >= 2.34 on Linux
            self._create = None

    def arm(self, seconds: float, status: int) -> bool:
        """End the process with ``status`` in ``seconds`` (replacing an earlier deadline)."""
        if self._create is None:
            return False
        self.cancel()
        event = _SigEvent(sigev_value=status, sigev_notify=_SIGEV_THREAD,
                          sigev_notify_function=self._exit.value)
        if self._create(1, ctypes.byref(event), ctypes.byref(self._timer)) != 0:  # MONOTONIC
            return False
        self._armed = True
        whole = int(seconds)
        when = _ITimerSpec(it_value=_TimeSpec(whole, int((seconds - whole) * 1e9)))
        return self._settime(self._timer, 0, ctypes.byref(when), None) == 0

    def cancel(self) -> None:
        """Remove the deadline."""
        if self._armed:
            self._delete(self._timer)
            self._armed = False


_deadline = ExitDeadline()


def arm_stop_deadline(status: int) -> None:
    """From now on, a stop that hangs says where (every thread's stack on stderr, which
    launch shows, at 4 s; faulthandler's own thread does it, even if Python is stuck in C)
    and ends the process with ``status`` at 4.5 s (see the module)."""
    faulthandler.dump_traceback_later(_HANG_REPORT_S, exit=False, file=sys.__stderr__)
    _deadline.arm(_EXIT_DEADLINE_S, status)


def _exit_with_parent() -> bool:
    """A node started by this package's launch files dies with the launch (see module);
    False if the launch is already gone."""
    expected = os.environ.get(PARENT_PID_VARIABLE, "")
    if not expected.isdigit():
        return True
    return die_with_parent(int(expected))


def rcl_message(exc: BaseException) -> str:
    """An rcl error without the C source locations it carries (``, at /x/parse.c:776``)."""
    text = re.sub(r",? at [^,\s]+\.c(pp)?:\d+", "", str(exc)).strip()
    return re.sub(r"^failed to initialize rcl: ", "", text)


def help_text(summary: str, parameters: Sequence[tuple[str, Any, str]]) -> str:
    """A node's ``--help``: what it does, how to run it, and its parameters."""
    name = summary.split(":", 1)[0]
    lines = [summary, "", f"usage: ros2 run dense_head_pose {name} [--ros-args -p NAME:=VALUE "
             "-r FROM:=TO --params-file FILE ...]", "", "parameters (default):"]
    for parameter, default, description in parameters:
        lines.append(f"  {parameter} ({default!r})")
        lines += textwrap.wrap(description, 88, initial_indent="      ",
                               subsequent_indent="      ")
    return "\n".join(lines)


def wants_help(args: Sequence[str]) -> bool:
    """Whether the command line asks for ``--help`` (or ``-h``), wherever it stands."""
    return any(arg in ("--help", "-h") for arg in args)


def run_node(factory: Callable[[], Node], args: Sequence[str] | None = None,
             close: Callable[[Any], None] | None = None,
             known_errors: tuple[type[BaseException], ...] = (),
             usage: str | None = None) -> int:
    """Create the node with ``factory``, spin it until asked to stop, clean up; exit status.

    ``close(node)`` runs before ``destroy_node()`` (stop worker threads, release devices).
    A node ends the process on its own by setting ``node.exit_status`` (a source that came
    to its end). rclpy failing to start (a params file that is not YAML) is one line on
    stderr and exit status 1. An exception of ``known_errors`` while creating or running the
    node is a user error (a source that cannot be opened, say): one line on stderr and exit
    status 1, no traceback. ``--help`` (anywhere on the command line) prints ``usage`` and
    exits 0.
    """
    argv = list(args) if args is not None else sys.argv
    if usage is not None and wants_help(argv[1:]):
        print(usage)
        return 0
    # recorded before rclpy.init(), so rclpy's own handlers chain to it
    stop = StopFlag(on_stop=lambda signum: arm_stop_deadline(0))
    stop.install()
    if not _exit_with_parent():
        return 0
    node = None
    executor = None
    status = 0
    try:
        try:
            rclpy.init(args=argv)
        except RCLError as exc:  # a params file that is missing or not YAML, say
            print(f"{Path(sys.argv[0]).name}: cannot start: {rcl_message(exc)}",
                  file=sys.stderr)
            status = 1
            return status
        node = factory()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while stop.signum is None and rclpy.ok() and getattr(node, "exit_status", None) is None:
            executor.spin_once(timeout_sec=_SPIN_STEP_S)
        status = getattr(node, "exit_status", None) or 0
    except ExternalShutdownException:
        pass
    except RCLError:
        if rclpy.ok():  # a real failure, not the shutdown race described above
            raise
    except known_errors as exc:
        print(f"{Path(sys.argv[0]).name}: {exc}", file=sys.stderr)
        status = 1
    finally:
        _shut_down(stop, status, executor, node, close)
    return status


def _shut_down(stop: StopFlag, status: int, executor: Any, node: Any,
               close: Callable[[Any], None] | None) -> None:
    """The orderly end of :func:`run_node`, whatever ended the spinning."""
    if stop.signum is None:  # leaving on our own (an error, the context gone)
        stop.signum = -1  # from here on, signals change nothing
        arm_stop_deadline(status)
    elif status:
        arm_stop_deadline(status)  # a stop request armed it with status 0
    # rclpy's signal thread triggers every registered guard condition on each signal; stop
    # it before the executor's guard conditions go, or a late signal races their removal
    uninstall = getattr(rclpy.signals, "uninstall_signal_handlers", None)
    if uninstall is not None:
        uninstall()
    if executor is not None:
        # rclpy's order: the executor (its guard conditions, its pending wait generator)
        # goes before the node it waits on
        with contextlib.suppress(Exception):  # its guard conditions on a dead context
            executor.shutdown(timeout_sec=1.0)
    if node is not None:
        if close is not None:
            close(node)
        node.destroy_node()
    rclpy.try_shutdown()
    # Python's finalisation puts its own handlers back to the default action (SIGTERM would
    # then kill the exiting process, exit code -15); ignoring ones are left alone
    ignore_stop_signals()
    faulthandler.cancel_dump_traceback_later()
    # the deadline stays armed: Python's finalisation destroys the DDS participant, which
    # can hang the same way
