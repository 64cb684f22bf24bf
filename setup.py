"""Build the optional native extensions; everything else is configured in pyproject.toml.

``tunio._native`` is the native offload engine, ``tunio._uring`` the io_uring rings of the
uring-* variants (it also needs liburing: Debian's ``liburing-dev``). Both are
``optional=True``: when there is no compiler, no Python headers or no liburing, ``pip install
-e .`` warns and goes on; the pure-Python engine still works, ``--engine native`` and the
uring-* variants say in one line what is missing.
"""

from glob import glob

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tunio._native",
            sources=sorted(glob("tunio/native/*.c")),
            depends=sorted(glob("tunio/native/*.h")),
            extra_compile_args=[
                "-O3",
                "-std=c11",
                "-fvisibility=hidden",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
            ],
            optional=True,
        ),
        Extension(
            "tunio._uring",
            sources=sorted(glob("tunio/uring/*.c")),
            depends=sorted(glob("tunio/uring/*.h")),
            libraries=["uring"],
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=[
                "-O2",
                "-std=c11",
                "-fvisibility=hidden",
                "-Wall",
                "-Wextra",
                "-Wno-unused-parameter",
            ],
            optional=True,
        ),
    ]
)
