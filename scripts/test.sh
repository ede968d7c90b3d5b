#!/usr/bin/env bash
# Set up everything (venv, ROS 2 wheels, colcon build of the package, models) and run the
# linter and every test, ROS 2 integration tests included. Extra arguments go to pytest.
# --setup-only stops after the set-up; --no-setup runs the tests on a set-up made before
# (nothing is installed or built, so another run can use the checkout meanwhile: .ci/run).
set -euo pipefail
source "$(dirname "$0")/env.sh"
phase=all
case "${1:-}" in
    --setup-only) phase=setup; shift ;;
    --no-setup) phase=run; shift ;;
esac
if [ "$phase" = run ]; then
    [ -x "$VENV/bin/python" ] && [ -f "$COLCON/install/setup.bash" ] || {
        echo "--no-setup: no set-up for $DISTRO in $VENV and $COLCON (run without it)" >&2
        exit 2
    }
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
else
    setup_venv
    install_core
    build_models  # before the colcon build, which installs the pack into the package's share/
    build_int8_model
    install_ros
    install_launch_stack
    build_ros
fi
source_ros
[ "$phase" = setup ] && { say_how_to_use; exit 0; }
export DHP_REQUIRE_ROS=1  # ROS tests fail, not skip, when the ROS layer is missing
log "ruff"
ruff check "$REPO"
log "pytest"
cd "$REPO"
status=0
pytest "$@" || status=$?
say_how_to_use
exit $status
