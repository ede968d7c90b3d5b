"""What the node publishes for one frame, defined once: the live node's publishers and the
bag writer both send exactly these messages, in this order.

A frame's messages are ``(topic, type, message)`` (:class:`Message`):

* ``faces`` (FaceArray; an unusable frame: no faces, image size 0), and for a usable frame
  ``head_pose`` (the largest face; none without a face) and ``head_poses``;
* ``/tf``: REP-155's ``face_<id>`` and ``gaze_<id>`` of every face (none without a face);
* with the ROS4HRI interface, the list of tracked ids (an empty one for an unusable frame)
  and each face's ``roi`` and ``landmarks`` under ``/humans/faces/<id>/``.

Relative topics (``faces``) resolve in the publisher's namespace (a camera's, with several);
absolute ones are global. The ids (``names``) are the faces' names in TF and ROS4HRI
(:func:`~.face_ids.tf_name`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..pipeline.results import Face
from . import messages
from .messages import MessageTypes

FACE_ARRAY = "dense_head_pose/msg/FaceArray"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
POSE_ARRAY = "geometry_msgs/msg/PoseArray"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
IDS_LIST = "hri_msgs/msg/IdsList"
ROI = "hri_msgs/msg/NormalizedRegionOfInterest2D"
LANDMARKS = "hri_msgs/msg/FacialLandmarks"
HRI_FACES = "/humans/faces"
TRACKED = f"{HRI_FACES}/tracked"


@dataclass(frozen=True)
class FrameOptions:
    """What a frame's messages include (the node's parameters of the same names)."""

    face_frame_prefix: str = "face_"
    gaze_frame_prefix: str = "gaze_"
    tf: bool = True
    hri: bool = False
    tracked_topic: str = TRACKED


@dataclass(frozen=True)
class Message:
    """One message of a frame: where it goes, its ROS type, the message itself, and for a
    face's own topics the face's name."""

    topic: str
    msgtype: str
    message: Any
    face: str | None = None


def camera_messages(types: MessageTypes, header: Any, size: tuple[int, int] | None,
                    faces: Sequence[Face]) -> list[Message]:
    """``faces``, ``head_pose`` and ``head_poses``; ``size`` (width, height) None: the
    frame was unusable."""
    width, height = size or (0, 0)
    out = [Message("faces", FACE_ARRAY, messages.face_array(types, header, width, height,
                                                            faces))]
    if size is None:
        return out
    if faces:
        out.append(Message("head_pose", POSE_STAMPED,
                           messages.pose_stamped(types, header, faces[0])))
    out.append(Message("head_poses", POSE_ARRAY, messages.pose_array(types, header, faces)))
    return out


def tf_messages(types: MessageTypes, header: Any, faces: Sequence[Face],
                names: Sequence[str], options: FrameOptions) -> list[Message]:
    """The faces' TF frames, as one TFMessage (none without a face or with TF off)."""
    if not faces or not options.tf:
        return []
    transforms = messages.face_transforms(types, header, faces, names,
                                          options.face_frame_prefix, options.gaze_frame_prefix)
    return [Message("/tf", TF_MESSAGE, messages.tf_message(types, transforms))]


def hri_messages(types: MessageTypes, header: Any, size: tuple[int, int] | None,
                 faces: Sequence[Face], names: Sequence[str],
                 options: FrameOptions) -> list[Message]:
    """The ROS4HRI messages: the tracked ids, then each face's ``roi`` and ``landmarks``."""
    if not options.hri:
        return []
    if size is None:
        faces, names = [], []
    out = [Message(options.tracked_topic, IDS_LIST, messages.ids_list(types, header, names))]
    if size is None:
        return out
    width, height = size
    for face, name in zip(faces, names):
        out.append(Message(f"{HRI_FACES}/{name}/roi", ROI,
                           messages.roi(types, header, face, width, height), name))
        out.append(Message(f"{HRI_FACES}/{name}/landmarks", LANDMARKS,
                           messages.facial_landmarks(types, header, face, width, height),
                           name))
    return out


def frame_messages(types: MessageTypes, header: Any, size: tuple[int, int] | None,
                   faces: Sequence[Face], names: Sequence[str],
                   options: FrameOptions) -> list[Message]:
    """Every message of a frame, in publishing order (see module)."""
    usable = list(faces) if size is not None else []
    return (camera_messages(types, header, size, usable)
            + (tf_messages(types, header, usable, names, options) if size is not None else [])
            + hri_messages(types, header, size, usable, names, options))
