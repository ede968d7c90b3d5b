"""Shared fixtures: the real model pack and the real test images and video.

``DHP_SHARED`` points at the shared directory (default: ``../shared`` beside the repository).
The model pack is whatever :func:`dense_head_pose.model_pack.locate` finds, i.e. what
``dense-head-pose models build`` made; tests never fall back to fakes.
"""

from __future__ import annotations

import os
import random

# ROS traffic of this test run stays on loopback, in a domain of its own; set before any ROS
# import, inherited by the node processes the tests start.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(10, 99)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")

import numpy as np
import pytest
from helpers import PACK, TESTDATA  # noqa: F401  (PACK: the pack the tests load)

from dense_head_pose import HeadPoseEstimator, images
from dense_head_pose.video.sources import open_source


@pytest.fixture(scope="session")
def estimator() -> HeadPoseEstimator:
    return HeadPoseEstimator.from_model_dir()


@pytest.fixture(scope="session")
def one_face() -> np.ndarray:
    return images.read(str(TESTDATA / "one_face.jpg"))


@pytest.fixture(scope="session")
def two_faces() -> np.ndarray:
    return images.read(str(TESTDATA / "two_faces.jpg"))


@pytest.fixture(scope="session")
def three_faces() -> np.ndarray:
    return images.read(str(TESTDATA / "three_faces_large.jpg"))


@pytest.fixture(scope="session")
def video_frames() -> list[np.ndarray]:
    with open_source(str(TESTDATA / "talking_head.mp4")) as source:
        return [frame for _, frame in source]


@pytest.fixture(scope="session")
def tiny(video_frames) -> list[np.ndarray]:
    """The test video at 320x180 (faces about 60 px wide): cheap frames, many of them."""
    import cv2

    return [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in video_frames]


@pytest.fixture(scope="module", autouse=True)
def _no_subreaper_left_behind():
    """No test module leaves this process adopting orphans (its own fixtures may, while it
    runs): a later test that kills a command's process would find its workers adopted by
    pytest, alive as zombies."""
    import ctypes

    yield
    value = ctypes.c_int(0)
    ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(value), 0, 0, 0)  # GET
    assert value.value == 0, "this module left the test process a subreaper"


@pytest.fixture(scope="session")
def rclpy_context():
    """rclpy initialised once for the session (after the ROS checks of the test module)."""
    from ros_harness import require_ros

    require_ros()
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def orphans_adopted():
    """This test adopts its orphaned descendants (a node whose launch died), and only it."""
    from dhp_test_support.processes import subreaper

    with subreaper():
        yield
