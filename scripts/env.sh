# Shared set-up steps of scripts/demo.sh and scripts/test.sh; source it, then call the steps.
# The ROS 2 build (.colcon) and the models (models/) land in the repository; the virtual
# environment lives outside it (one per checkout, under ~/.cache/dense_head_pose), because
# CMake refuses exported include paths inside the package's source tree (numpy's, here).
# Idempotent: re-running only redoes what is missing.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${DHP_SHARED:-$(cd "$REPO/.." && pwd)/shared}
PYTHON=${PYTHON:-python3}

# The ROS 2 distribution to build from PyPI wheels: kilted (default) or jazzy, from
# DHP_ROS_DISTRO or ROS_DISTRO. One venv and one colcon build per distribution, side by side.
DISTRO=${DHP_ROS_DISTRO:-${ROS_DISTRO:-kilted}}
case "$DISTRO" in
    kilted) PREFIX=ros- ; LAUNCH_SRC=$SHARED/ros/launch_stack/src ;;
    jazzy) PREFIX=ros-jazzy- ; LAUNCH_SRC=$SHARED/ros/launch_stack/src-jazzy ;;
    *) printf 'ROS_DISTRO=%s is not one this set-up builds from PyPI wheels; using kilted '\
'(DHP_ROS_DISTRO=jazzy for Jazzy)\n' "$DISTRO" >&2
       DISTRO=kilted PREFIX=ros- LAUNCH_SRC=$SHARED/ros/launch_stack/src ;;
esac
VENV=${DHP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/dense_head_pose/venv-$(printf '%s' "$REPO" | sha1sum | cut -c1-12)-$DISTRO}
COLCON=$REPO/.colcon/$DISTRO

# ROS 2 from PyPI wheels (see README, "ROS 2 from PyPI"); a real ROS install has these.
ROS_WHEELS=(rclpy rmw-fastrtps-cpp std-msgs geometry-msgs sensor-msgs visualization-msgs
            diagnostic-msgs ament-index-python)
ROS_BUILD_WHEELS=(ament-cmake ament-package ament-cmake-python rosidl-default-generators
                  ament-cmake-include-directories rosidl-core-generators)
if [ "$DISTRO" = jazzy ]; then
    # Jazzy's ament_cmake_ros has no -core split: it needs the test CMake packages too
    ROS_BUILD_WHEELS+=(ament-cmake-ros ament-cmake-gmock ament-cmake-gtest ament-cmake-pytest
                       gmock-vendor gtest-vendor python-cmake-module)
else
    ROS_BUILD_WHEELS+=(ament-cmake-ros-core)
fi

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
    log "installing ROS 2 ($DISTRO) wheels and the colcon tool chain"
    pip install --quiet colcon-common-extensions "${ROS_WHEELS[@]/#/$PREFIX}" \
        "${ROS_BUILD_WHEELS[@]/#/$PREFIX}"
    # The wheels' CMake exports name their build machine's Python; point them at this venv.
    local pyinc npinc
    pyinc=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    npinc=$(python -c 'import numpy; print(numpy.get_include())')
    grep -rl /opt/python/cp3 "$VENV/share" 2>/dev/null | xargs -r sed -i -E \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$npinc#g" \
        -e "s#/opt/python/cp3[0-9]+-cp3[0-9]+/include/python3\.[0-9]+#$pyinc#g"
    chain_venv
}

chain_venv() {
    # The venv as a workspace colcon can chain: its local_setup puts the wheels' ament index
    # on AMENT_PREFIX_PATH (the wheels do not), so sourcing our install's setup.bash is all a
    # user needs, and colcon no longer warns that the venv holds no local_setup file
    local file
    for file in local_setup.sh local_setup.bash; do
        cat > "$VENV/$file" <<SETUP
# written by dense_head_pose's scripts/env.sh: the ROS 2 wheels' ament index in this venv
case ":\${AMENT_PREFIX_PATH:-}:" in
    *":$VENV:"*) ;;
    *) export AMENT_PREFIX_PATH="$VENV\${AMENT_PREFIX_PATH:+:\$AMENT_PREFIX_PATH}" ;;
esac
SETUP
    done
}

install_launch_stack() {
    # launch, launch_ros and the ros2 command are not on PyPI: ../shared/ros brings their sources
    if python -c 'import launch_ros.actions, ros2launch, ros2param, composition_interfaces.srv' \
            2>/dev/null; then
        return
    fi
    log "installing launch, launch_ros and the ros2 command ($DISTRO) from $LAUNCH_SRC"
    # (its check runs `ros2 pkg --help`, whose 'create' verb wants ament_copyright, which a
    # user of this package never needs: that one line is not an error, and is not shown)
    bash "$SHARED/ros/launch_stack/install_launch_stack.sh" "$VENV" "$LAUNCH_SRC" \
        2> >(grep -v "Failed to load entry point 'create'" >&2)
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
    export ROS_DISTRO=$DISTRO  # as a real install's setup.bash does
    set +u  # colcon's setup scripts read unset variables
    # shellcheck disable=SC1091
    source "$COLCON/install/setup.bash"
    set -u
}

build_models() {
    # the pack is made from its upstream public files: ../shared/upstream when present
    # (offline), else downloaded from their pinned commits; a second run finds it done
    if [ -d "$SHARED/upstream" ]; then
        log "building the model pack from $SHARED/upstream"
        dense-head-pose models build --from "$SHARED/upstream" --dest "$REPO/models"
    else
        log "building the model pack from its upstream files (downloading them)"
        dense-head-pose models build --dest "$REPO/models"
    fi
}

build_int8_model() {
    # the int8 regressor, calibrated on the test video and stills (the tests compare it)
    # (built before, with the SHA-256 recorded beside it that the load checks)
    [ -f "$REPO/models/face_3dmm_mb05_int8.tflite.sha256" ] && \
        python -c 'import sys; from pathlib import Path; from dense_head_pose import model_pack
sys.exit(model_pack.recorded_hash_problem(Path(sys.argv[1])) is not None)' \
        "$REPO/models/face_3dmm_mb05_int8.tflite" && return
    log "building the int8 regressor (calibrated on $SHARED/testdata)"
    # (TQDM_DISABLE: ai-edge-quantizer's calibration progress bar)
    TQDM_DISABLE=1 dense-head-pose models build --from "$SHARED/upstream" \
        --dest "$REPO/models" --precision int8 --calibration \
        "$SHARED/testdata/talking_head.mp4" "$SHARED/testdata/one_face.jpg" \
        "$SHARED/testdata/two_faces.jpg" "$SHARED/testdata/three_faces_large.jpg"
}

activation() {
    # the lines that put this checkout's tools on a shell's PATH (make env prints them)
    printf 'source %q\n' "$VENV/bin/activate"
    if [ -f "$COLCON/install/setup.bash" ]; then
        printf 'source %q  # ROS 2 (%s): ros2 launch dense_head_pose ...\n' \
            "$COLCON/install/setup.bash" "$DISTRO"
    fi
}

say_how_to_use() {
    log "ready. To use dense-head-pose (and ros2) in a shell:"
    activation | sed 's/^/    /' >&2
    log "or: eval \"\$(make -s env)\"   (ROS_DISTRO=jazzy make -s env for Jazzy's)"
}
