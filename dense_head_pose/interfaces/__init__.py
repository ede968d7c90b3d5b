"""ROS interfaces without ROS: what the node and the bag processor read and publish alike.

:mod:`.messages` builds and reads the messages (with rclpy's classes or ``rosbags``'),
:mod:`.camera_info` pairs each image with its CameraInfo, :mod:`.face_ids` names faces as
ROS4HRI does, :mod:`.tracked_union` merges several cameras' tracked lists.
"""
