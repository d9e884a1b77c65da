"""Builds and installs the greenlet package (python/greenlet) with its
extension greenlet._greenlet, which contains the engine (src/, arch/),
its inspection functions (inspect/, with libunwind) and the CPython binding
(python/ext/).

    make                       builds it in place, in python/greenlet/
    /usr/bin/python3 -m pip install --no-build-isolation .   installs it
"""
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExtWithAssembly(build_ext):
    """The engine's register switch is an assembly file (arch/switch.S)."""

    def build_extensions(self):
        self.compiler.src_extensions.append(".S")
        super().build_extensions()


extension = Extension(
    "greenlet._greenlet",
    sources=sorted(glob("python/ext/*.c")) + sorted(glob("src/*.c"))
    + sorted(glob("inspect/*.c")) + ["arch/switch.S"],
    include_dirs=["src", "inspect", "python/ext"],
    depends=glob("src/*.h") + glob("inspect/*.h") + glob("python/ext/*.h")
    + glob("arch/*.S"),
    libraries=["unwind-generic", "unwind"],
    extra_compile_args=["-std=gnu11", "-fvisibility=hidden",
                        "-Wno-missing-field-initializers"],
)

setup(
    name="greenlet",
    version="3.0.0",
    description="Lightweight coroutines on a switching engine you can see into",
    package_dir={"": "python"},
    packages=["greenlet"],
    package_data={"greenlet": ["greenlet.h"]},
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExtWithAssembly},
    python_requires=">=3.11",
)
