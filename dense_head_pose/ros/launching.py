"""What this package's launch files share: how a ``head_pose_node`` is started (plain or
managed, with autostart), and the camera list of ``multi_camera.launch.py``.

Launch files stay declarations of arguments; the rules live here, once, and are tested
without starting anything (``test/test_ros_launch.py``).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import lifecycle_msgs.msg
from launch.actions import EmitEvent, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.events import matches_action
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState

from ..interfaces.names import ABSOLUTE_TOPIC, TOKEN
from .process import PARENT_PID_VARIABLE

PACKAGE = "dense_head_pose"


@dataclass(frozen=True)
class CameraTopics:
    """One camera of ``multi_camera.launch.py``: its name (the node's namespace and the
    prefix of its face ids) and its driver's topics."""

    name: str
    image: str
    camera_info: str


def parse_cameras(text: str) -> list[CameraTopics]:
    """The ``cameras`` launch argument: entries separated by spaces or ``;``, each ``NAME``
    (topics ``/NAME/image_raw`` and ``/NAME/camera_info``) or ``NAME=IMAGE,CAMERA_INFO``.

    Raises ValueError with the fix for anything else: an empty list, a name that cannot be
    a namespace, relative or malformed topics, a name or image topic given twice."""
    cameras = []
    for entry in text.replace(";", " ").split():
        name, _, topics = entry.partition("=")
        if not TOKEN.fullmatch(name):
            raise ValueError(f"camera name {name!r}: a letter, then letters, digits or '_' "
                             f"(it becomes a namespace and the prefix of face ids)")
        if topics:
            image, _, info = topics.partition(",")
            for topic in (image, info):
                if not ABSOLUTE_TOPIC.fullmatch(topic):
                    raise ValueError(f"camera {name}: {topic!r} is not an absolute topic name "
                                     f"(write {name}=/IMAGE_TOPIC,/CAMERA_INFO_TOPIC)")
        else:
            image, info = f"/{name}/image_raw", f"/{name}/camera_info"
        cameras.append(CameraTopics(name, image, info))
    if not cameras:
        raise ValueError("cameras is empty: give at least one, e.g. cameras:='front back' or "
                         "cameras:='front=/front/color/image_raw,/front/color/camera_info'")
    for attribute in ("name", "image"):
        values = [getattr(c, attribute) for c in cameras]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"camera {attribute} given twice: {', '.join(twice)}")
    return cameras


def hri_available() -> bool:
    """Whether hri_msgs can be imported here (what the node's ``hri.enable: auto`` finds)."""
    return importlib.util.find_spec("hri_msgs") is not None


def end_launch(reason: str) -> OpaqueFunction:
    """``on_exit`` of a required process: shut the launch down, unless it is already
    shutting down. launch_ros's ROS adapter (started for lifecycle nodes) shuts down on every
    shutdown event and raises "Cannot shutdown a ROS adapter that is not running" on the
    second, which a plain ``Shutdown`` on each node's exit after Ctrl-C produces."""
    def act(context: Any) -> list[Any]:
        return [] if getattr(context, "is_shutdown", False) else [Shutdown(reason=reason)]

    return OpaqueFunction(function=act)


def head_pose_node(*, namespace: str, image: str, camera_info: str, parameters: list[Any],
                   managed: bool, autostart: bool) -> list[Any]:
    """The actions that start one ``head_pose_node``: a plain node, or a lifecycle node
    (``managed``) that, with ``autostart``, is configured and then activated as a lifecycle
    manager would. Its ending ends the launch; it ends with the launch process even if that
    dies or gets SIGTERM (``DENSE_HEAD_POSE_PARENT_PID``, see :mod:`.process`)."""
    arguments = dict(
        package=PACKAGE, executable="head_pose_node", name="head_pose_node",
        namespace=namespace, parameters=[*parameters, {"managed": managed}],
        remappings=[
            ("image", image),
            # compressed transport subscribes to <image>/compressed, as image_transport
            # names it: substitutions concatenated, never evaluated
            ("image/compressed", [image, "/compressed"]),
            ("camera_info", camera_info),
        ],
        output="screen", on_exit=end_launch("head_pose_node ended"),
        additional_env={PARENT_PID_VARIABLE: str(os.getpid())},
    )
    if not managed:
        return [Node(**arguments)]
    node = LifecycleNode(**arguments)
    actions: list[Any] = [node]
    if autostart:
        actions += [
            # once, after the first configure: a later deactivate is the manager's business
            RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
                handle_once=True,
                entities=[EmitEvent(event=ChangeState(
                    lifecycle_node_matcher=matches_action(node),
                    transition_id=lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE))])),
            EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE)),
        ]
    return actions


def tracked_merger(inputs: list[str]) -> Node:
    """``hri_tracked_merger`` over ``inputs`` (see :mod:`.tracked_merger`)."""
    return Node(package=PACKAGE, executable="hri_tracked_merger", name="hri_tracked_merger",
                parameters=[{"inputs": inputs}], output="screen",
                on_exit=end_launch("hri_tracked_merger ended"),
                additional_env={PARENT_PID_VARIABLE: str(os.getpid())})
