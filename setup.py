"""Build of the optional C extension (mappings/engine/_rowprog.c); everything else is in pyproject.toml.

Optional: where it cannot be compiled the install goes on and the mapping engine runs its generated
Python, with the same results (`mappings.engine.native.AVAILABLE` says which). `make bootstrap` builds it in place.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mappings.engine._rowprog",
            sources=["mappings/engine/_rowprog.c"],
            optional=True,
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers"],
        )
    ]
)
