"""How a node process ends: the stop deadline of :mod:`dense_head_pose.ros.process`."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ros_harness import require_ros

pytestmark = pytest.mark.ros
require_ros()


def test_stop_deadline_ends_a_process_stuck_in_c() -> None:
    """The runner's deadline ends the process with its status even while a C call holds the
    GIL (where no Python thread or signal handler can run)."""
    for status in (0, 3):
        code = ("import ctypes\n"
                "from dense_head_pose.ros.process import ExitDeadline\n"
                f"assert ExitDeadline().arm(0.5, {status})\n"
                "ctypes.PyDLL(None).sleep(60)\n"
                "print('not reached')\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=50)
        assert (done.returncode, done.stdout) == (status, "")
