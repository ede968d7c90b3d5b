"""Demo: a video (or camera) through head_pose_node, shown in rviz2.

    ros2 launch dense_head_pose demo.launch.py
    ros2 launch dense_head_pose demo.launch.py source:=0 mode:=pose rviz:=false
    ros2 launch dense_head_pose demo.launch.py source:=/path/to/clip.mp4 namespace:=front
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node, PushRosNamespace


def _default_source() -> str:
    share = get_package_share_directory("dense_head_pose")
    demo = os.path.join(share, "demo", "talking_head.mp4")
    return demo if os.path.exists(demo) else "0"


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dense_head_pose")
    source = LaunchConfiguration("source")
    mode = LaunchConfiguration("mode")
    namespace = LaunchConfiguration("namespace")
    return LaunchDescription([
        DeclareLaunchArgument("source", default_value=_default_source(),
                              description="Video file, image folder or camera index"),
        DeclareLaunchArgument("rviz", default_value="true", description="Start rviz2"),
        DeclareLaunchArgument("mode", default_value="mesh",
                              description="mesh_image drawing: mesh, sparse, dense or pose"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the camera and face topics"),
        DeclareLaunchArgument("camera_info_file", default_value="",
                              description="camera_calibration YAML of the source (optional)"),
        GroupAction([
            PushRosNamespace(namespace),
            Node(
                package="dense_head_pose", executable="image_source", name="image_source",
                parameters=[{"source": source, "loop": True,
                             "frame_id": "camera_optical_frame",
                             "camera_info_file": LaunchConfiguration("camera_info_file")}],
                output="screen",
            ),
            Node(
                package="dense_head_pose", executable="head_pose_node", name="head_pose_node",
                parameters=[os.path.join(share, "config", "head_pose.yaml"),
                            # image_source publishes reliably: no frame loss on one machine
                            {"draw_mode": mode, "image_qos": "reliable"}],
                output="screen",
            ),
            # the rviz config names its topics relative, so they resolve in the namespace
            Node(
                package="rviz2", executable="rviz2", name="rviz2",
                arguments=["-d", os.path.join(share, "rviz", "demo.rviz")],
                condition=IfCondition(PythonExpression(["'", LaunchConfiguration("rviz"),
                                                        "' == 'true'"])),
            ),
        ]),
    ])
