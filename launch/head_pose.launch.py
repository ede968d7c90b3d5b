"""head_pose_node on your own camera driver's topics.

    ros2 launch dense_head_pose head_pose.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info
    ros2 launch dense_head_pose head_pose.launch.py transport:=compressed image_qos:=reliable \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info

``transport``, ``image_qos`` and ``hri`` override the same parameters of ``params_file``.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dense_head_pose")
    image = LaunchConfiguration("image")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="Image topic of the camera driver"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="CameraInfo topic of the camera driver"),
        DeclareLaunchArgument("transport", default_value="raw", choices=["raw", "compressed"],
                              description="raw: sensor_msgs/Image on <image>; compressed: "
                                          "sensor_msgs/CompressedImage on <image>/compressed"),
        DeclareLaunchArgument("image_qos", default_value="sensor_data",
                              choices=["sensor_data", "reliable"],
                              description="Image subscription QoS (reliable: no loss from a "
                                          "reliable publisher on the same machine)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the face topics"),
        DeclareLaunchArgument("hri", default_value="auto", choices=["auto", "on", "off"],
                              description="ROS4HRI face topics (/humans/faces/...); auto: on "
                                          "when hri_msgs is installed"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "head_pose.yaml"),
                              description="Parameter file of head_pose_node"),
        Node(
            package="dense_head_pose", executable="head_pose_node", name="head_pose_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params_file"),
                        {"input_transport": LaunchConfiguration("transport"),
                         "image_qos": LaunchConfiguration("image_qos"),
                         "hri.enable": LaunchConfiguration("hri")}],
            remappings=[
                ("image", image),
                # compressed transport subscribes to <image>/compressed, as image_transport
                # names it: substitutions concatenated, never evaluated
                ("image/compressed", [image, "/compressed"]),
                ("camera_info", LaunchConfiguration("camera_info")),
            ],
            output="screen", on_exit=Shutdown(reason="head_pose_node ended"),
            # exit with this launch process even if it dies or gets SIGTERM (ros/runner.py)
            additional_env={"DENSE_HEAD_POSE_PARENT_PID": str(os.getpid())},
        ),
    ])
