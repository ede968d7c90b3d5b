"""Shared fixtures: the real model pack and the real test images and video.

``DHP_SHARED`` points at the shared directory (default: ``../shared`` beside the repository).
The model pack is whatever :func:`dense_head_pose.model_pack.locate` finds, i.e. what
``dense-head-pose models build`` made; tests never fall back to fakes.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

# ROS traffic of this test run stays on loopback, in a domain of its own; set before any ROS
# import, inherited by the node processes the tests start.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(10, 99)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")

import cv2
import numpy as np
import pytest

from dense_head_pose import HeadPoseEstimator, images
from dense_head_pose.video import open_source

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DHP_SHARED", REPO.parent / "shared"))
TESTDATA = SHARED / "testdata"
SHARED_MODELS = SHARED / "models"  # the pack converted with torch, before models build


def _built_pack() -> Path:
    """The pack the set-up built (models build from ../shared/upstream), as the package
    finds it."""
    from dense_head_pose import ModelError, model_pack

    try:
        return model_pack.locate()
    except ModelError:
        return REPO / "models"  # tests that need it fail saying so


PACK = _built_pack()


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


def rotate_image(image: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise (as displayed) about the centre, keeping everything in view."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="session")
def rclpy_context():
    """rclpy initialised once for the session (after the ROS checks of the test module)."""
    from ros_harness import require_ros

    require_ros()
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()
