"""Build the optional native offload engine; everything else is configured in pyproject.toml.

``optional=True``: when there is no compiler or no Python headers, ``pip install -e .`` warns
and goes on; the pure-Python engine still works and ``--engine native`` says it is missing.
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
        )
    ]
)
