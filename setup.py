"""The compiled hot path (Cython): built when Cython and a C compiler are there, skipped
otherwise (the pure-Python modules are the reference and the fallback; the server logs which
one runs). ``.ci/setup`` builds it in place: ``python setup.py build_ext --inplace``.

Two kinds of extension:

* ``EXTENSIONS``: Cython sources (.pyx) with pure-Python twins that the modules fall back to
  (proxy/wire/scanner.py, ``proxy.sql.analyze._fast_base_pure``);
* ``COMPILED_MODULES``: ordinary modules compiled with Cython, typed by an augmenting .pxd
  next to them: the relay's connections (proxy/wire/stream.py, proxy/backend/connection.py as
  extension types with C fields; 9 % fewer instructions per point select) and the give-back
  (proxy/backend/pool.py's ShardPool, proxy/session/link.py's BackendLink; 7-10 % fewer
  again), and the session's fast path (proxy/session/fast.py's FastPath: 12-13 % fewer
  prepared, 5-8 % text). Compiled without such typing, modules of the relay cost *more* than
  CPython 3.11's specializing interpreter (README, *Performance*): compiled code reads
  attributes through the generic lookup the interpreter's inline caches skip.
  ``SHARDGATE_COMPILE_MODULES=a,b`` (or ``none``) builds another set, for a measurement
  (``tests.bench.instructions``). The .py file stays the code and the reference:
  ``proxy/__init__.py`` loads such an extension only while its source (.py and .pxd) is the
  one it was built from (the manifest written here, ``proxy/compiled.txt``) and the modules
  its .pxd cimports run compiled too, and none of the extensions when
  ``SHARDGATE_PURE_PYTHON=1``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

EXTENSIONS = [
    ("proxy.wire._cscan", "proxy/wire/_cscan.pyx"),
    ("proxy.sql._cfastkey", "proxy/sql/_cfastkey.pyx"),
    ("proxy.shard._crows", "proxy/shard/_crows.pyx"),
]

# The relay's connections, the give-back and the fast path, typed by their augmenting .pxd
# files (proxy/wire/stream.pxd, proxy/backend/connection.pxd, proxy/backend/pool.pxd,
# proxy/session/link.pxd, proxy/session/fast.pxd; each cimports the ones before);
# SHARDGATE_COMPILE_MODULES
# (comma-separated, "none" for none) builds another set instead, for a measurement.
COMPILED_MODULES = [
    name.strip()
    for name in os.environ.get(
        "SHARDGATE_COMPILE_MODULES",
        "proxy.wire.stream,proxy.backend.connection,proxy.backend.pool,proxy.session.link,"
        "proxy.session.fast",
    ).split(",")
    if name.strip() and name.strip() != "none"
]

MANIFEST = "proxy/compiled.txt"


def source_of(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _load_source_digest() -> Callable[[str], str]:
    """proxy/sourcedigest.py's source_digest, loaded by its path: importing ``proxy`` here would
    run the package's __init__ (its finder of compiled modules) before they are built."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proxy", "sourcedigest.py")
    spec = importlib.util.spec_from_file_location("_shardgate_digest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    digest: Callable[[str], str] = module.source_digest
    return digest


# The one definition, shared with proxy/__init__.py (which checks the manifest with it).
source_digest = _load_source_digest()


class BuildExt(build_ext):
    """build_ext, then the manifest: the source digest of each compiled module whose
    extension is built from it (in place: in the source tree, next to the extensions). A
    module whose compile failed is not in it: an older extension left there is not loaded."""

    def run(self) -> None:
        self.built: set[str] = set()
        super().run()
        lines = []
        for module in COMPILED_MODULES:
            if module in self.built and os.path.exists(self.get_ext_fullpath(module)):
                lines.append(f"{module} {source_digest(source_of(module))}\n")
        package_dir = os.path.dirname(self.get_ext_fullpath("proxy.x"))
        os.makedirs(package_dir, exist_ok=True)
        with open(os.path.join(package_dir, os.path.basename(MANIFEST)), "w") as out:
            out.writelines(lines)

    def build_extension(self, ext: Extension) -> None:
        super().build_extension(ext)  # raises when it fails (an optional one is then skipped)
        self.built.add(ext.name)


def compiled(sources: list[tuple[str, str]], directives: dict[str, object]) -> list[Extension]:
    """The extensions Cython translates; one it cannot is left out (its module runs as
    Python), with the error shown."""
    from Cython.Build import cythonize
    from Cython.Compiler.Errors import CompileError

    built: list[Extension] = []
    for name, source in sources:
        try:
            built += cythonize(
                [Extension(name, [source])],
                compiler_directives={"language_level": "3", **directives},
                quiet=True,
            )
        except CompileError as exc:
            print(f"setup.py: {source} is not compiled ({exc}); it runs as Python")
    return built


try:
    import Cython  # noqa: F401
except ImportError:  # no Cython: the pure-Python hot path
    ext_modules = []
else:
    ext_modules = compiled(EXTENSIONS, {}) + compiled(
        [(name, source_of(name)) for name in COMPILED_MODULES],
        {
            # Annotations are for mypy: Cython would otherwise turn ``float`` into a C double
            # and check ``x: bytes`` strictly (a bytearray passes where mypy allows it).
            "annotation_typing": False,
            "binding": True,
        },
    )
    for extension in ext_modules:
        # A failed compile (no C compiler, no Python headers) skips the extension with a
        # warning instead of failing the install (cythonize drops the flag: set it here).
        extension.optional = True

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
