"""dense_head_pose: head pose, 3D face landmarks and a dense face mesh from camera images.

A LiteRT reimplementation of 3DDFA_V2 (Guo et al., ECCV 2020). The core (this package minus
``dense_head_pose.ros``) has no ROS dependency::

    from dense_head_pose import HeadPoseEstimator
    estimator = HeadPoseEstimator.from_model_dir()
    for face in estimator(bgr_image).faces:
        print(face.yaw, face.pitch, face.roll, face.pose.translation)
"""

import pkgutil

# A colcon install generates this package's ROS messages (dense_head_pose.msg) into its own
# copy of the package; extending __path__ lets a source checkout or pip install find them too.
__path__ = pkgutil.extend_path(__path__, __name__)

from .errors import (
    DenseHeadPoseError,
    ImageError,
    ModelError,
    RendererUnavailableError,
    VideoError,
)
from .pipeline.estimator import EstimatorOptions, HeadPoseEstimator
from .pipeline.pose import CameraIntrinsics, HeadPose
from .pipeline.render import MeshRenderer, RenderStyle
from .pipeline.results import Face, FrameResult
from .video.motion_filter import MotionParams
from .video.smoothing import SmoothingOptions
from .video.tracking import FaceTracker, TrackerOptions

__version__ = "0.4.0"

__all__ = [
    "CameraIntrinsics",
    "DenseHeadPoseError",
    "EstimatorOptions",
    "Face",
    "FaceTracker",
    "FrameResult",
    "HeadPose",
    "HeadPoseEstimator",
    "ImageError",
    "MeshRenderer",
    "ModelError",
    "MotionParams",
    "RenderStyle",
    "RendererUnavailableError",
    "SmoothingOptions",
    "TrackerOptions",
    "VideoError",
    "__version__",
]
