"""pip build of dense_head_pose: the ROS-free core, its CLI and the native renderer.

(colcon builds the ROS 2 package from CMakeLists.txt instead; both build the same C library.)
The model manifest is copied into the package so a pip install can find and fetch the pack.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithManifest(build_py):
    """Copy models/manifest.json into the built package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "dense_head_pose" / "manifest.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / "models" / "manifest.json", target)


setup(cmdclass={"build_py": BuildPyWithManifest})
