"""Map the project's top-level folders onto the single import package ``waystation``.

The layout is fixed by the product's design: ``node/`` is the root package and each other
top-level folder is one sub-package. The package list is derived by walking those folders, so
a new sub-folder with an ``__init__.py`` can never be silently left out of the wheel.

The Cython extensions in ``ext/`` are declared here (pyproject-only ext-modules is still
experimental). They are optional at build time so the project installs where no compiler
exists; the pure-Python codec then runs, and CI's guard (``WAYSTATION_REQUIRE_EXT=1``) fails
the run if the extension silently did not build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
# top-level folder -> dotted package name
FOLDERS = {
    "node": "waystation",
    "bundle": "waystation.bundle",
    "ext": "waystation.ext",
    "store": "waystation.store",
    "convergence": "waystation.convergence",
    "contact-plan": "waystation.contact_plan",
}


def discover() -> tuple[list[str], dict[str, str]]:
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for folder, dotted in FOLDERS.items():
        base = ROOT / folder
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            if any(part.startswith((".", "__")) for part in rel.parts):
                continue
            name = ".".join([dotted, *rel.parts]) if rel.parts else dotted
            packages.append(name)
            package_dir[name] = str(Path(folder, *rel.parts)).replace(os.sep, "/")
    return packages, package_dir


class OptionalBuildExt(build_ext):
    """Build extensions, but let the install succeed without them (pure path still works)."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any build failure degrades to pure Python
            print(f"WARNING: waystation Cython extensions not built: {exc}", file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"WARNING: could not build {ext.name}: {exc}", file=sys.stderr)


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("WARNING: Cython missing; building without extensions", file=sys.stderr)
        return []
    # lmdbfast binds the system liblmdb (Debian: liblmdb-dev); without it that one module
    # fails to build and the store uses py-lmdb (its pure twin), as OptionalBuildExt allows
    libraries = {"lmdbfast": ["lmdb"]}
    modules = [
        Extension(
            f"waystation.ext.{pyx.stem}",
            [str(pyx.relative_to(ROOT)).replace(os.sep, "/")],
            extra_compile_args=["-O3"],
            libraries=libraries.get(pyx.stem, []),
        )
        for pyx in sorted((ROOT / "ext").glob("*.pyx"))
    ]
    if not modules:
        return []
    return cythonize(
        modules,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
        },
        quiet=True,
    )


packages, package_dir = discover()
setup(
    packages=packages,
    package_dir=package_dir,
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
