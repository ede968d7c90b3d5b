"""head_pose_node on your own camera driver's topics.

    ros2 launch dense_head_pose head_pose.launch.py \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info
    ros2 launch dense_head_pose head_pose.launch.py transport:=compressed \
        image:=/camera/color/image_raw camera_info:=/camera/color/camera_info
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("dense_head_pose")
    image = LaunchConfiguration("image")
    transport = LaunchConfiguration("transport")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="Image topic of the camera driver"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="CameraInfo topic of the camera driver"),
        DeclareLaunchArgument("transport", default_value="raw",
                              description="raw (sensor_msgs/Image) or compressed"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace of the face topics"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "head_pose.yaml"),
                              description="Parameter file of head_pose_node"),
        Node(
            package="dense_head_pose", executable="head_pose_node", name="head_pose_node",
            namespace=LaunchConfiguration("namespace"),
            parameters=[LaunchConfiguration("params_file"), {"input_transport": transport}],
            remappings=[
                ("image", image),
                # compressed transport subscribes to <image>/compressed, as image_transport names it
                ("image/compressed", PythonExpression(["'", image, "' + '/compressed'"])),
                ("camera_info", LaunchConfiguration("camera_info")),
            ],
            output="screen",
        ),
    ])
