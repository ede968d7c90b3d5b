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

#: The public names and the modules they live in, imported on first use (PEP 562): importing
#: a submodule (``dense_head_pose.lifetime`` in an executable's first line, say) loads
#: nothing else.
_PUBLIC = {
    "DenseHeadPoseError": "errors", "ImageError": "errors", "ModelError": "errors",
    "RendererUnavailableError": "errors", "VideoError": "errors",
    "EstimatorOptions": "pipeline.estimator", "HeadPoseEstimator": "pipeline.estimator",
    "CameraIntrinsics": "pipeline.pose", "HeadPose": "pipeline.pose",
    "MeshRenderer": "pipeline.render", "RenderStyle": "pipeline.render",
    "Face": "pipeline.results", "FrameResult": "pipeline.results",
    "MotionParams": "video.motion_filter", "SmoothingOptions": "video.smoothing",
    "FaceTracker": "video.tracking", "TrackerOptions": "video.tracking",
}


def __getattr__(name: str) -> object:
    if name in _PUBLIC:
        import importlib

        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


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
