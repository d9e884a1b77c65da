"""Builds and installs the greenlet package (python/greenlet) with its
extension greenlet._greenlet, which contains the engine (src/, arch/),
its inspection functions (inspect/, with libunwind) and the CPython binding
(python/ext/), and with gltop, the viewer (gltop/, with ncurses): an
executable in the package, run by the `gltop` command, and its man page.

    make                       builds it in place, in python/greenlet/
    /usr/bin/python3 -m pip install --no-build-isolation .   installs it
"""
import os
import shlex
import shutil
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ENGINE_SOURCES = sorted(glob("src/*.c"))
INSPECT_SOURCES = sorted(glob("inspect/*.c"))
ARCH_SOURCES = ["arch/switch.S"]
ENGINE_DEPENDS = glob("src/*.h") + glob("inspect/*.h") + glob("arch/*.S")

# gltop as the Makefile's build/gltop: the viewer, the engine and the
# monitor reader in one executable, linked as there: libgcc_s first, so
# that the compiler's unwinder, not libunwind's copy of its _Unwind_* API,
# is the one in use.
GLTOP_SOURCES = (sorted(glob("gltop/*.c")) + ENGINE_SOURCES + INSPECT_SOURCES
                 + ARCH_SOURCES)
GLTOP_DEPENDS = glob("gltop/*.h") + ENGINE_DEPENDS
GLTOP_INCLUDE_DIRS = ["src", "inspect", "gltop"]
GLTOP_COMPILE_ARGS = ["-std=gnu11", "-O2", "-fvisibility=hidden",
                      "-Wno-missing-field-initializers"]
GLTOP_LINK_ARGS = ["-Wl,--no-as-needed", "-lgcc_s", "-Wl,--as-needed",
                   "-lunwind-generic", "-lunwind", "-ldl", "-lncursesw",
                   "-lpthread"]


class BuildExtWithAssembly(build_ext):
    """The engine's register switch is an assembly file (arch/switch.S).
    After the extension, it builds gltop with the same compiler, into the
    package next to the extension, where the launcher greenlet._gltop
    finds it: in build_lib, or with --inplace in python/greenlet/."""

    def run(self):
        # setuptools builds in place by building in build_lib and copying
        # the extensions to the source tree after; gltop goes straight to
        # where it belongs, decided while --inplace still holds.
        self.gltop_destination = self.gltop_path()
        super().run()

    def build_extensions(self):
        self.compiler.src_extensions.append(".S")
        super().build_extensions()
        self.build_gltop(self.gltop_destination)

    def gltop_path(self):
        package = os.path.dirname(self.get_ext_fullpath(extension.name))
        return os.path.join(package, "gltop")

    def build_gltop(self, target):
        """Compiles and links gltop in build_temp, unless `target` is newer
        than every source and header, then copies it to `target` under a
        temporary name and renames it into place, so that two builds in
        place at once (make -j) never leave half a file. LDFLAGS from the
        environment reach the link, as they reach the extension's (make
        python-extension-asan links the sanitizers so)."""
        inputs = GLTOP_SOURCES + GLTOP_DEPENDS
        if not self.force and os.path.exists(target) and all(
                os.path.getmtime(path) <= os.path.getmtime(target)
                for path in inputs):
            return
        objects = self.compiler.compile(
            GLTOP_SOURCES, output_dir=os.path.join(self.build_temp,
                                                   "gltop-objects"),
            include_dirs=GLTOP_INCLUDE_DIRS, debug=self.debug,
            extra_postargs=GLTOP_COMPILE_ARGS, depends=GLTOP_DEPENDS)
        self.compiler.link_executable(
            objects, "gltop", output_dir=self.build_temp, debug=self.debug,
            extra_preargs=shlex.split(os.environ.get("LDFLAGS", "")),
            extra_postargs=GLTOP_LINK_ARGS)
        self.mkpath(os.path.dirname(target))
        staged = "%s.%d.tmp" % (target, os.getpid())
        shutil.copyfile(os.path.join(self.build_temp, "gltop"), staged)
        os.chmod(staged, 0o755)
        os.replace(staged, target)

    def get_outputs(self):
        return super().get_outputs() + [self.gltop_path()]


extension = Extension(
    "greenlet._greenlet",
    sources=sorted(glob("python/ext/*.c")) + ENGINE_SOURCES + INSPECT_SOURCES
    + ARCH_SOURCES,
    include_dirs=["src", "inspect", "python/ext"],
    depends=ENGINE_DEPENDS + glob("python/ext/*.h"),
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
    entry_points={"console_scripts": ["gltop = greenlet._gltop:main"]},
    data_files=[("share/man/man1", ["docs/gltop.1"])],
    python_requires=">=3.10",
)
