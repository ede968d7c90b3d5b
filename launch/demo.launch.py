"""Demo: a camera, a video or an image folder through head_pose_node, shown in rviz2.

    ros2 launch dense_head_pose demo.launch.py                        # camera 0 and rviz2
    ros2 launch dense_head_pose demo.launch.py source:=/path/to/video.mp4 rviz:=false
    ros2 launch dense_head_pose demo.launch.py source:=0 mode:=pose namespace:=front

Everything is checked before anything starts: a camera index that has no device, a file or
folder that does not exist or rviz:=true without rviz2 installed end the launch at once with
one line saying what is missing and how to fix it (exit status 1), rather than leaving nodes
idle. Once running, any of the processes ending (the rviz2 window closed, a source that fails)
shuts the whole demo down.
"""

import os
import sys

from ament_index_python.packages import (
    PackageNotFoundError,
    get_package_prefix,
    get_package_share_directory,
)
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.parameter_descriptions import ParameterValue

from dense_head_pose.ros.process import PARENT_PID_VARIABLE

PACKAGE = "dense_head_pose"
# the nodes exit with this launch process even if it dies or gets SIGTERM (see ros/process.py)
TIED_TO_LAUNCH = {PARENT_PID_VARIABLE: str(os.getpid())}


def _problems(source: str, rviz: bool) -> list:
    """What stands in the way of the demo, each with its fix."""
    problems = []
    if source.isdigit():
        device = f"/dev/video{int(source)}"
        if sys.platform.startswith("linux") and not os.path.exists(device):
            problems.append(f"no camera {source} ({device} does not exist): pass "
                            "source:=/path/to/video.mp4 (or an image folder, or another "
                            "camera index)")
    elif not os.path.exists(source):
        problems.append(f"source {source!r} does not exist: pass source:=/path/to/video.mp4, "
                        "an image folder or a camera index")
    if rviz:
        try:
            get_package_prefix("rviz2")
        except PackageNotFoundError:
            distro = os.environ.get("ROS_DISTRO", "<distro>")
            problems.append(f"rviz2 is not installed: install ros-{distro}-rviz2 or pass "
                            "rviz:=false")
    return problems


def _nodes(context):
    share = get_package_share_directory(PACKAGE)
    source = LaunchConfiguration("source").perform(context).strip()
    rviz = LaunchConfiguration("rviz").perform(context) == "true"
    problems = _problems(source, rviz)
    if problems:  # launch prints this one line as an error and exits with status 1
        raise RuntimeError("demo.launch.py cannot start: " + "; ".join(problems))
    nodes = [
        Node(
            package=PACKAGE, executable="image_source", name="image_source",
            # value_type=str: launch would otherwise turn a camera index "0" into an integer
            parameters=[{"source": ParameterValue(source, value_type=str), "loop": True,
                         "frame_id": "camera_optical_frame",
                         "camera_info_file": LaunchConfiguration("camera_info_file")}],
            output="screen", additional_env=TIED_TO_LAUNCH,
            on_exit=Shutdown(reason="image_source ended"),
        ),
        Node(
            package=PACKAGE, executable="head_pose_node", name="head_pose_node",
            parameters=[os.path.join(share, "config", "head_pose.yaml"),
                        # image_source publishes reliably: no frame loss on one machine
                        {"draw_mode": LaunchConfiguration("mode"), "image_qos": "reliable",
                         "hri.enable": LaunchConfiguration("hri")}],
            output="screen", additional_env=TIED_TO_LAUNCH,
            on_exit=Shutdown(reason="head_pose_node ended"),
        ),
    ]
    if rviz:  # the rviz config names its topics relative, so they resolve in the namespace
        nodes.append(Node(
            package="rviz2", executable="rviz2", name="rviz2",
            arguments=["-d", os.path.join(share, "rviz", "demo.rviz")],
            on_exit=Shutdown(reason="rviz2 closed"),
        ))
    return [GroupAction([PushRosNamespace(LaunchConfiguration("namespace")), *nodes])]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value="0",
                              description="Video file, image folder or camera index"),
        DeclareLaunchArgument("rviz", default_value="true", choices=["true", "false"],
                              description="Start rviz2 with rviz/demo.rviz"),
        DeclareLaunchArgument("mode", default_value="mesh",
                              choices=["mesh", "sparse", "dense", "pose"],
                              description="What mesh_image shows"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the camera and face topics"),
        DeclareLaunchArgument("camera_info_file", default_value="",
                              description="camera_calibration YAML of the source (optional)"),
        DeclareLaunchArgument("hri", default_value="auto", choices=["auto", "on", "off"],
                              description="ROS4HRI face topics (/humans/faces/...); auto: on "
                                          "when hri_msgs is installed"),
        OpaqueFunction(function=_nodes),
    ])
