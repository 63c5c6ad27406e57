"""The extension is independent of the torch version: it links no torch library and its
sources include no torch header, so one build serves Debian's torch 1.13 and torch 2.x."""
import glob
import os
import subprocess
import sys

import rmsprop
from rmsprop import _core

SOURCES = os.path.join(os.path.dirname(__file__), "..", "src")


def test_extension_links_no_torch_library():
    needed = subprocess.run(["ldd", _core.__file__], capture_output=True, text=True,
                            check=True).stdout
    for library in ("libtorch", "libc10", "libshm", "libcaffe2"):
        assert library not in needed, needed


def test_sources_include_no_torch_header():
    files = glob.glob(os.path.join(SOURCES, "*.cpp")) + glob.glob(os.path.join(SOURCES, "*.hpp"))
    assert files
    for path in files:
        with open(path) as f:
            for line in f:
                if line.lstrip().startswith("#include"):
                    assert "torch" not in line and "ATen" not in line and "c10" not in line, \
                        (path, line)


def test_numpy_api_works_without_importing_torch():
    code = ("import sys, numpy as np, rmsprop; w = np.ones(3); opt = rmsprop.RMSprop([w], lr=0.1); "
            "opt.step([np.ones(3)]); assert (w < 1).all(); assert 'torch' not in sys.modules")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(rmsprop.__file__)))
    # the interpreter running the suite (Debian's /usr/bin/python3 under CTest), which has numpy
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
