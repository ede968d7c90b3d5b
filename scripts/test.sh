#!/usr/bin/env bash
# Set up everything (venv, ROS 2 wheels, colcon build of the package, models) and run the
# linter and every test, ROS 2 integration tests included. Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/env.sh"
setup_venv
install_core
build_models  # before the colcon build, which installs the pack into the package's share/
build_int8_model
install_ros
install_launch_stack
build_ros
source_ros
export DHP_REQUIRE_ROS=1  # ROS tests fail, not skip, when the ROS layer is missing
log "ruff"
ruff check "$REPO"
log "pytest"
cd "$REPO"
status=0
pytest "$@" || status=$?
say_how_to_use
exit $status
