"""pytest's side of talking to the real nodes over DDS: the harness itself is
:mod:`dhp_test_support.ros` (the ROS benchmarks use it too); here, whether a missing ROS layer
skips a test or fails it."""

from __future__ import annotations

import os

import pytest

from dhp_test_support.processes import (  # noqa: F401  (re-exported for the tests)
    default_signals,
    group_members,
    subreaper,
)
from dhp_test_support.ros import (  # noqa: F401  (re-exported for the tests)
    TIMEOUT_SCALE,
    Launch,
    NodeProcess,
    Probe,
    camera_info_msg,
    executable,
    image_msg,
    kill_all_launches,
    stamp,
)

REQUIRE_ROS = os.environ.get("DHP_REQUIRE_ROS") == "1"


def require_ros() -> None:
    """Skip (locally) or fail (CI, ``DHP_REQUIRE_ROS=1``) when the ROS layer is missing."""
    try:
        import rclpy  # noqa: F401

        from dense_head_pose.msg import FaceArray  # noqa: F401
    except ImportError as exc:
        if REQUIRE_ROS:
            pytest.fail(f"ROS 2 layer required but missing: {exc}")
        pytest.skip(f"ROS 2 layer not available: {exc}", allow_module_level=True)
