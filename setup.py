"""The C kernels: built by `pip install` (and `make`) from their sources; everything else is in
pyproject.toml. Portable flags: the kernels pick POPCNT/AVX2 clones at load time (target_clones),
so a wheel built here runs on any x86-64."""

from setuptools import Extension, setup

_FLAGS = ["-O3", "-std=c11", "-fno-strict-aliasing"]

setup(
    ext_modules=[
        Extension("hashhub.index._native", ["src/hashhub/index/_native.c"], extra_compile_args=_FLAGS),
        Extension("hashhub.hub._pool_count", ["src/hashhub/hub/_pool_count.c"], extra_compile_args=_FLAGS),
    ]
)
