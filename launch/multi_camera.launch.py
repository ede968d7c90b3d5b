"""One head_pose_node per camera, and one /humans/faces/tracked for all of them.

    ros2 launch dense_head_pose multi_camera.launch.py cameras:='front back'
    ros2 launch dense_head_pose multi_camera.launch.py \
        cameras:='front=/front/color/image_raw,/front/color/camera_info back'

Each camera NAME gets a node in namespace NAME (its outputs on /NAME/head_pose, /NAME/faces,
...), face ids prefixed ``NAME_`` (ROS4HRI topics /humans/faces/NAME_xxxxx/..., TF frames
face_NAME_xxxxx), its list of tracked faces on /NAME/humans/faces/tracked, and, when ROS4HRI
is on, ``hri_tracked_merger`` publishes their union on /humans/faces/tracked (see the README,
"Several cameras"). A bare NAME means /NAME/image_raw and /NAME/camera_info.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from dense_head_pose.ros.launching import (
    PACKAGE,
    head_pose_node,
    hri_available,
    parse_cameras,
    tracked_merger,
)


def _nodes(context):
    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    try:
        cameras = parse_cameras(arg("cameras"))
    except ValueError as exc:  # launch prints this one line as an error, exit status 1
        raise RuntimeError(f"multi_camera.launch.py cannot start: {exc}") from None
    hri = arg("hri")
    actions = []
    for camera in cameras:
        tracked = f"/{camera.name}/humans/faces/tracked"
        actions += head_pose_node(
            namespace=camera.name, image=camera.image, camera_info=camera.camera_info,
            parameters=[arg("params_file"), {
                "input_transport": arg("transport"), "image_qos": arg("image_qos"),
                "hri.enable": hri, "face_id_prefix": f"{camera.name}_",
                "hri.tracked_topic": tracked}],
            managed=arg("lifecycle") == "true", autostart=arg("autostart") == "true")
    if hri != "off" and hri_available():
        actions.append(tracked_merger(
            [f"/{c.name}/humans/faces/tracked" for c in cameras]))
    actions.append(LogInfo(msg="cameras: " + "; ".join(
        f"{c.name}: {c.image}, {c.camera_info}" for c in cameras)))
    return actions


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("cameras", default_value="front back",
                              description="Cameras, separated by spaces or ';': NAME (topics "
                                          "/NAME/image_raw, /NAME/camera_info) or "
                                          "NAME=IMAGE_TOPIC,CAMERA_INFO_TOPIC"),
        DeclareLaunchArgument("transport", default_value="raw", choices=["raw", "compressed"],
                              description="raw: sensor_msgs/Image; compressed: "
                                          "CompressedImage on <image>/compressed"),
        DeclareLaunchArgument("image_qos", default_value="auto",
                              choices=["auto", "sensor_data", "reliable"],
                              description="Image subscription QoS of every node: auto "
                                          "(reliable when the publishers are), sensor_data, "
                                          "reliable"),
        DeclareLaunchArgument("hri", default_value="auto", choices=["auto", "on", "off"],
                              description="ROS4HRI face topics and the merged "
                                          "/humans/faces/tracked; auto: on when hri_msgs is "
                                          "installed"),
        DeclareLaunchArgument("lifecycle", default_value="false", choices=["true", "false"],
                              description="Start the nodes as managed lifecycle nodes"),
        DeclareLaunchArgument("autostart", default_value="true", choices=["true", "false"],
                              description="With lifecycle:=true, configure and activate them"),
        DeclareLaunchArgument("params_file",
                              default_value=os.path.join(share, "config", "head_pose.yaml"),
                              description="Parameter file of every head_pose_node"),
        OpaqueFunction(function=_nodes),
    ])
