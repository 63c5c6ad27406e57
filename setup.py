"""pip install --no-build-isolation .  — builds rmsprop._core with the project's CMake.

Only Debian's packages are needed (cmake, g++, pybind11-dev, python3-dev, setuptools); the
extension is built for the Python running pip, with the CUDA backend when nvcc is found
(RMSPROP_CUDA=OFF in the environment leaves it out; ON requires it); RMSPROP_CMAKE_ARGS adds
arguments of your own to CMake's configure step. See docs/python.md.
"""
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        source = os.path.dirname(os.path.abspath(__file__))
        build = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        subprocess.run(["cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                        f"-DRMSPROP_PYTHON={sys.executable}", "-DRMSPROP_BUILD_TESTS=OFF",
                        "-DRMSPROP_BUILD_APPS=OFF", "-DRMSPROP_BUILD_BENCH=OFF",
                        "-DRMSPROP_BUILD_TORCH=OFF",
                        f"-DRMSPROP_CUDA={os.environ.get('RMSPROP_CUDA', 'AUTO')}",
                        *shlex.split(os.environ.get("RMSPROP_CMAKE_ARGS", ""))], check=True)
        subprocess.run(["cmake", "--build", build, "--target", "_core", "-j",
                        str(os.cpu_count() or 1)], check=True)
        built = os.path.join(build, "python", "rmsprop", os.path.basename(self.get_ext_filename(ext.name)))
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)


setup(ext_modules=[Extension("rmsprop._core", sources=[])], cmdclass={"build_ext": CMakeBuild})
