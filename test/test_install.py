"""The documented robot install (docs/install.md), line by line, as far as this machine can
run it.

The block under "Install on a robot" is read from the page itself, so the two cannot drift
apart: every line is either run here (in a fresh workspace under a temporary home) or listed
in NOT_RUNNABLE with the reason. rosdep runs for real, offline, against the rosdistro
snapshot in ../shared (`rosdep_check.sh`), for Humble, Jazzy and Kilted.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import SHARED, TESTDATA
from ros_harness import Launch, Probe, kill_all_launches, require_ros

pytestmark = pytest.mark.ros
require_ros()

from geometry_msgs.msg import PoseStamped  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
INSTALL = (REPO / "docs" / "install.md").read_text()
ROSDEP_CHECK = SHARED / "ros" / "rosdistro" / "rosdep_check.sh"
NOT_RUNNABLE = {
    "source /opt/ros/$ROS_DISTRO/setup.bash": "no apt ROS here: ROS 2 comes from PyPI wheels",
    "sudo rosdep init": "writes /etc/ros and needs the network",
    "rosdep update": "needs the network; rosdep_check.sh updates from the snapshot instead",
    "git clone URL_OF_THIS_REPOSITORY dense_head_pose": "no network: the checkout's tracked "
                                                       "files are copied instead",
}


def install_block() -> list[str]:
    section = INSTALL.split("## Install on a robot", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "docs/install.md's install section has no bash block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines()
            if line.strip()]


def clean_env() -> dict[str, str]:
    """This process's environment without the workspaces it has sourced (rosdep would take
    their packages for sources and skip them)."""
    drop = ("AMENT_PREFIX_PATH", "ROS_PACKAGE_PATH", "COLCON_PREFIX_PATH", "CMAKE_PREFIX_PATH")
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_every_install_line_is_run_or_says_why_not() -> None:
    lines = install_block()
    handled = {line for line in lines if line in NOT_RUNNABLE or any(
        line.startswith(prefix) for prefix in RUN)}
    assert set(lines) == handled, set(lines) - handled
    assert set(NOT_RUNNABLE) <= set(lines), "NOT_RUNNABLE names a line the page dropped"


def test_rosdep_resolves_on_every_distribution() -> None:
    """`rosdep install --from-paths src -y --ignore-src` as the real client resolves it."""
    assert "rosdep install --from-paths src -y --ignore-src" in install_block()
    if shutil.which("rosdep") is None:
        pytest.fail("rosdep is not installed (the test extra has it)")
    result = subprocess.run(["bash", str(ROSDEP_CHECK), str(REPO)], capture_output=True,
                            text=True, timeout=300, env=clean_env(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for distro in ("humble", "jazzy", "kilted"):
        section = out.split(f"== {distro}", 1)[1].split("==", 1)[0]
        assert f"ros-{distro}-rclpy" in section and "python3-opencv" in section
        assert ("hri-msgs" in section) == (distro != "kilted"), distro  # not released there
        assert "rviz2" not in section  # the viewer is optional: no Qt on a headless robot
    assert "Cannot locate rosdep definition" not in out + result.stderr


def test_requirements_are_what_the_stacks_test() -> None:
    """The pip line's file is the one scripts/test_stacks.sh installs on top of Ubuntu
    22.04's and 24.04's packages before running the core tests."""
    lines = [line for line in install_block() if "requirements-ros.txt" in line]
    assert len(lines) == 2 and all(line.startswith("python3 -m pip install --user") for
                                   line in lines)
    assert "--break-system-packages" in lines[1]
    script = (REPO / "scripts" / "test_stacks.sh").read_text()
    assert "requirements-ros.txt" in script
    requirements = (REPO / "requirements-ros.txt").read_text()
    for name in ("ai-edge-litert", "threadpoolctl", "numpy>=1.23.2,<2"):
        assert name in requirements


RUN = ("mkdir -p ~/ros2_ws/src", "cd ~/ros2_ws", "rosdep install", "python3 -m pip install",
       "cd src/dense_head_pose && python3 -m dense_head_pose models build",
       "colcon build", "source install/setup.bash", "ros2 launch", "ros2 topic echo")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """`mkdir`, the clone (a copy of the tracked files), `models build`, `colcon build`."""
    home = tmp_path_factory.mktemp("home")
    lines = install_block()
    assert "mkdir -p ~/ros2_ws/src && cd ~/ros2_ws/src" in lines
    src = home / "ros2_ws" / "src"
    src.mkdir(parents=True)
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    for name in tracked:
        target = src / "dense_head_pose" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    build = "cd src/dense_head_pose && python3 -m dense_head_pose models build --dest models"
    assert any(line.startswith(build) for line in lines)
    # offline: the same build from the local copies of the upstream files
    result = subprocess.run(["python3", "-m", "dense_head_pose", "models", "build", "--dest",
                             "models", "--from", str(SHARED / "upstream")],
                            cwd=src / "dense_head_pose", capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "colcon build --packages-select dense_head_pose" in lines
    result = subprocess.run(["colcon", "build", "--packages-select", "dense_head_pose",
                             "--event-handlers", "console_cohesion-", "--cmake-args",
                             "-DBUILD_TESTING=OFF"], cwd=home / "ros2_ws",
                            capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, "CMAKE_PREFIX_PATH": os.environ.get(
                                "VIRTUAL_ENV", "")})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home / "ros2_ws"


def sourced_env(workspace: Path) -> dict[str, str]:
    """The environment after `source install/setup.bash` in ``workspace``."""
    assert "source install/setup.bash" in install_block()
    dump = subprocess.run(["bash", "-c", "set +u; source install/setup.bash && env -0"],
                          cwd=workspace, capture_output=True, check=True).stdout
    return dict(item.split("=", 1) for item in dump.decode().split("\0") if "=" in item)


@pytest.mark.usefixtures("orphans_adopted")
def test_the_workspace_launches_and_publishes_head_poses(rclpy_context, workspace) -> None:
    env = sourced_env(workspace)
    prefix = workspace / "install" / "dense_head_pose"
    assert str(prefix) in env["AMENT_PREFIX_PATH"]
    assert (prefix / "share" / "dense_head_pose" / "models" / "face_3dmm_mb05.tflite").is_file()
    line = next(x for x in install_block() if x.startswith("ros2 launch"))
    args = line.replace("/path/to/video.mp4", str(TESTDATA / "talking_head.mp4")).split()[3:]
    launch = Launch(*args, log_dir=workspace, env=env)
    probe = Probe("install_probe")
    try:
        probe.subscribe(PoseStamped, "/head_pose")
        assert probe.spin_until(lambda: len(probe.received["/head_pose"]) >= 5, 60), \
            launch.output()[-3000:]
        # the node runs from this workspace, not from the test set-up's build
        assert _node_prefix(launch) == prefix
        echo_line = next(x for x in install_block() if x.startswith("ros2 topic echo"))
        for _ in range(3):  # the CLI's daemon needs a moment to see the graph
            echo = subprocess.run(echo_line.split(), capture_output=True, text=True,
                                  timeout=60, env=env, check=False)
            if echo.returncode == 0 and "position:" in echo.stdout:
                break
            time.sleep(2.0)
        assert "position:" in echo.stdout, echo.stdout + echo.stderr
    finally:
        probe.destroy()
        launch.send(signal.SIGINT)
        report = launch.finish(timeout=40)
        kill_all_launches()
    assert report["leftover"] == [], report["output"][-2000:]


def _node_prefix(launch: Launch) -> Path | None:
    """The install prefix of the launched head_pose_node, from its command line."""
    pid = launch.processes().get("head_pose_node", (None, None))[1]
    if pid is None:
        return None
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    for arg in cmdline:
        if arg.endswith(b"/lib/dense_head_pose/head_pose_node"):
            return Path(arg.decode()).parents[2]
    return None
