"""Who looks at the robot, and who wants to interact: mutual gaze per face
(:mod:`.mutual_gaze`), engagement per person (:mod:`.engagement`), ROS4HRI's anonymous
person ids (:mod:`.person_ids`). Plain Python: no ROS import."""
