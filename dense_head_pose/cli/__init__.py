"""The ``dense-head-pose`` command: images, videos, recordings, accuracy, speed and the
model pack; a module per subcommand, their shared options in :mod:`.common`.

JSON goes to stdout, one object per line; logs and progress bars go to stderr, so
``dense-head-pose video clip.mp4 --json > poses.jsonl`` gives a clean file.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import DenseHeadPoseError
from ..lifetime import Interrupted, end, raise_on_stop_signals
from . import bag, benchmark, engagement, evaluate, image, models, record, stability, video
from .common import LOG, OutputError, Parser

#: The subcommands, in the order ``--help`` lists them.
SUBCOMMANDS = (image, video, stability, benchmark, evaluate, bag, engagement, record, models)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dense-head-pose``."""
    parser = Parser(
        prog="dense-head-pose",
        description="Head pose, 3D face landmarks and dense face mesh from images and video.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in SUBCOMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 for a known error, with a message)."""
    return end(_main(argv))


def _main(argv: Sequence[str] | None) -> int:
    _reopen_closed_std_streams()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    raise_on_stop_signals()
    try:
        if getattr(args, "json", False) and sys.stdout is None:
            raise OutputError("standard output is closed: cannot print JSON")
        return args.run(args)
    except (DenseHeadPoseError, ValueError) as exc:
        LOG.error("%s", exc)
        if isinstance(exc, OutputError):
            _silence_stdout()
        return 2
    except KeyboardInterrupt:
        return 130
    except Interrupted as stop:
        LOG.error("stopped by %s", signal.Signals(stop.signum).name)
        return 128 + stop.signum
    except BrokenPipeError:
        _silence_stdout()
        return 0


def _reopen_closed_std_streams() -> None:
    """With stdin, stdout or stderr closed (``2>&-``), the next file opened takes that
    descriptor, and anything written "to stderr" (LiteRT's INFO lines) lands in it: give
    the closed ones /dev/null instead."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _silence_stdout() -> None:
    """Python flushes stdout at exit; when it cannot take more, let that go quietly."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass
