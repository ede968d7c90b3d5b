"""Exception types of dense_head_pose.

Every failure a caller can act on has one named type here, so that the CLI, the ROS node and
library users can tell "fix your model pack" from "this frame was unusable" without parsing
messages.
"""

from __future__ import annotations


class DenseHeadPoseError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelError(DenseHeadPoseError):
    """A model file is missing, truncated, corrupt or of the wrong shape.

    The message names the file and the command that fetches a good copy.
    """


class ImageError(DenseHeadPoseError, ValueError):
    """An input image cannot be turned into an 8-bit BGR frame (empty, wrong shape or dtype)."""


class VideoError(DenseHeadPoseError):
    """A video file or camera cannot be opened or yields no decodable frame."""


class NativeLibraryError(DenseHeadPoseError):
    """A native library of this package (``native/*.c``) is not built or cannot be loaded."""


class RendererUnavailableError(NativeLibraryError):
    """The native mesh renderer library is not built or cannot be loaded."""
