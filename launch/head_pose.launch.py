"""head_pose_node on your own camera driver's topics.

    ros2 launch dense_head_pose head_pose.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info
    ros2 launch dense_head_pose head_pose.launch.py transport:=compressed image_qos:=reliable \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info
    ros2 launch dense_head_pose head_pose.launch.py lifecycle:=true autostart:=false

``transport``, ``image_qos`` and ``hri`` override the same parameters of ``params_file``.
``lifecycle:=true`` starts the node managed (a lifecycle node waiting in ``unconfigured``);
with ``autostart:=true`` (the default) this launch configures and activates it, as a
lifecycle manager would; with ``autostart:=false`` it waits for yours (or ``ros2 lifecycle
set``). Arguments are only ever used as text: nothing here evaluates them.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from dense_head_pose.ros.launching import PACKAGE, head_pose_node


def _node(context):
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    return head_pose_node(
        namespace=arg("namespace"), image=arg("image"), camera_info=arg("camera_info"),
        parameters=[arg("params_file"), {"input_transport": arg("transport"),
                                         "image_qos": arg("image_qos"),
                                         "hri.enable": arg("hri")}],
        managed=arg("lifecycle") == "true", autostart=arg("autostart") == "true")


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="Image topic of the camera driver"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="CameraInfo topic of the camera driver"),
        DeclareLaunchArgument("transport", default_value="raw", choices=["raw", "compressed"],
                              description="raw: sensor_msgs/Image on <image>; compressed: "
                                          "sensor_msgs/CompressedImage on <image>/compressed"),
        DeclareLaunchArgument("image_qos", default_value="auto",
                              choices=["auto", "sensor_data", "reliable"],
                              description="Image subscription QoS: auto (reliable when the "
                                          "publishers are, else best effort), sensor_data, "
                                          "reliable"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the face topics"),
        DeclareLaunchArgument("hri", default_value="auto", choices=["auto", "on", "off"],
                              description="ROS4HRI face topics (/humans/faces/...); auto: on "
                                          "when hri_msgs is installed"),
        DeclareLaunchArgument("lifecycle", default_value="false", choices=["true", "false"],
                              description="Start head_pose_node as a managed lifecycle node"),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="With lifecycle:=true, configure and activate it "
                                          "(false: wait for a lifecycle manager)"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "head_pose.yaml"),
                              description="Parameter file of head_pose_node"),
        OpaqueFunction(function=_node),
    ])
