"""shardgate's proxy.

Which of its modules run compiled. The Cython twins (proxy/wire/_cscan.pyx,
proxy/sql/_cfastkey.pyx) are picked by their importers, with the pure modules as fallback.
setup.py also compiles ordinary modules, typed by their .pxd (the relay's connections:
proxy/wire/stream.py, proxy/backend/connection.py), and writes the digest of each one's source
next to them (``proxy/compiled.txt``). The finder installed here loads such an extension only
while its source is still the one it was built from (an edited module runs as Python until it
is built again, never as stale machine code), and loads only .py files -- none of the
extensions, so ``proxy.wire.stream`` and ``proxy.sql.analyze`` take their pure twins -- when
``SHARDGATE_PURE_PYTHON=1``: the pure-Python code is the reference the tests run both ways
(tests/e2e/test_compiled_modes.py). :func:`hot_path_modules` says which ran compiled and why
the others did not (the server logs it at start-up).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import (
    EXTENSION_SUFFIXES,
    ExtensionFileLoader,
    ModuleSpec,
    SourceFileLoader,
)
from importlib.util import spec_from_file_location
from types import ModuleType

from proxy.sourcedigest import source_digest

PURE_ENV = "SHARDGATE_PURE_PYTHON"
MANIFEST = os.path.join(os.path.dirname(__file__), "compiled.txt")
STALE = "its source changed since the build"


def _manifest() -> dict[str, str]:
    try:
        with open(MANIFEST) as lines:
            return dict(line.split() for line in lines if line.strip())
    except (OSError, ValueError):
        return {}


class CompiledFinder(MetaPathFinder):
    """Finds ``proxy.*`` modules: a module's extension only when the manifest has its
    source's digest (else its .py), nothing but .py files when ``pure``."""

    def __init__(self, pure: bool, built: dict[str, str]) -> None:
        self.pure = pure
        # module -> the digest of the source its extension was built from (the manifest)
        self.built = {} if pure else built
        self.compiled: set[str] = set()
        # module -> why its extension (one is there) is not used
        self.skipped: dict[str, str] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith("proxy.") or not path:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in list(path)[:1]:  # a package of ours has one directory
            if os.path.isdir(os.path.join(entry, leaf)):
                return None  # a package: the ordinary finder's
            source = os.path.join(entry, leaf + ".py")
            extension = next(
                (
                    found
                    for suffix in EXTENSION_SUFFIXES
                    if os.path.isfile(found := os.path.join(entry, leaf + suffix))
                ),
                None,
            )
            if not os.path.isfile(source):
                if extension is not None and self.pure:
                    # A compiled-only twin (proxy.wire._cscan): its importer falls back.
                    raise ModuleNotFoundError(f"{PURE_ENV} is set", name=fullname)
                return None  # the ordinary finder's
            if extension is None:
                return None  # a plain module: the ordinary finder's
            if not self.pure and fullname in self.built:
                if source_digest(source) == self.built[fullname]:
                    self.compiled.add(fullname)
                    compiled = ExtensionFileLoader(fullname, extension)
                    return spec_from_file_location(fullname, extension, loader=compiled)
                self.skipped[fullname] = STALE
            else:
                self.skipped[fullname] = (
                    f"{PURE_ENV} is set" if self.pure else "its extension is not in the manifest"
                )
            loader = SourceFileLoader(fullname, source)
            return spec_from_file_location(fullname, source, loader=loader)
        return None


# SHARDGATE_PURE_PYTHON=1: only the .py files run (the reference; the tests run both ways).
PURE_PYTHON = os.environ.get(PURE_ENV, "") not in ("", "0")
_finder = CompiledFinder(PURE_PYTHON, _manifest())
sys.meta_path.insert(0, _finder)


def hot_path_modules() -> tuple[list[str], dict[str, str]]:
    """The modules imported so far that run compiled, and the ones with an extension that
    run as Python (why)."""
    return sorted(_finder.compiled), dict(sorted(_finder.skipped.items()))
