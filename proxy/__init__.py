"""shardgate's proxy.

Which of its modules run compiled. The Cython twins (proxy/wire/_cscan.pyx,
proxy/sql/_cfastkey.pyx) are picked by their importers, with the pure modules as fallback.
setup.py also compiles ordinary modules, typed by their .pxd (the relay's connections:
proxy/wire/stream.py, proxy/backend/connection.py; the give-back: proxy/backend/pool.py,
proxy/session/link.py; the fast path: proxy/session/fast.py), and writes the digest of each
one's source next to them (``proxy/compiled.txt``). The finder installed here loads such an
extension only while its source is still the one it was built from (an edited module runs as
Python until it is built again, never as stale machine code) and the modules whose types its
.pxd cimports run compiled too, and loads only .py files -- none of the extensions, so
``proxy.wire.stream`` and ``proxy.sql.analyze`` take their pure twins -- when
``SHARDGATE_PURE_PYTHON=1``: the pure-Python code is the reference the tests run both ways
(tests/e2e/test_compiled_modes.py).
:func:`hot_path_modules` says which ran compiled and why the others did not (the server logs
it at start-up).
"""

from __future__ import annotations

import os
import re
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
                why = self._why_not(fullname, source)
                if why is None:
                    self.compiled.add(fullname)
                    compiled = ExtensionFileLoader(fullname, extension)
                    return spec_from_file_location(fullname, extension, loader=compiled)
                self.skipped[fullname] = why
            else:
                self.skipped[fullname] = (
                    f"{PURE_ENV} is set" if self.pure else "its extension is not in the manifest"
                )
            loader = SourceFileLoader(fullname, source)
            return spec_from_file_location(fullname, source, loader=loader)
        return None

    def _why_not(self, fullname: str, source: str) -> str | None:
        """None when the extension of ``fullname`` (built: in the manifest) may load: built
        from ``source`` as it is, and every module its .pxd cimports runs compiled too (the
        extension checks at import that their classes are the C types it was built against:
        an edited connection.py running as Python must not make the pool's import fail); else
        why not."""
        if source_digest(source) != self.built[fullname]:
            return STALE
        # The directory of the package ``proxy``: ``source``'s, up one per subpackage.
        root = os.path.dirname(source)
        for _ in range(fullname.count(".") - 1):
            root = os.path.dirname(root)
        for used in _cimports(source[: -len(".py")] + ".pxd"):
            if used in sys.modules:
                runs_compiled = used in self.compiled
            else:
                used_base = os.path.join(root, *used.split(".")[1:])
                runs_compiled = (
                    used in self.built
                    and any(os.path.isfile(used_base + suffix) for suffix in EXTENSION_SUFFIXES)
                    and self._why_not(used, used_base + ".py") is None
                )
            if not runs_compiled:
                return f"it uses the types of {used}, which runs as Python"
        return None


def _cimports(pxd: str) -> list[str]:
    """The modules of ours a compiled module's augmenting .pxd cimports."""
    try:
        with open(pxd) as declarations:
            text = declarations.read()
    except OSError:
        return []
    return re.findall(r"^from (proxy(?:\.\w+)+) cimport ", text, re.MULTILINE)


# SHARDGATE_PURE_PYTHON=1: only the .py files run (the reference; the tests run both ways).
PURE_PYTHON = os.environ.get(PURE_ENV, "") not in ("", "0")
_finder = CompiledFinder(PURE_PYTHON, _manifest())
sys.meta_path.insert(0, _finder)


def hot_path_modules() -> tuple[list[str], dict[str, str]]:
    """The modules imported so far that run compiled, and the ones with an extension that
    run as Python (why)."""
    return sorted(_finder.compiled), dict(sorted(_finder.skipped.items()))
