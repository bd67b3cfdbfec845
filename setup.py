"""The compiled hot path (Cython): built when Cython and a C compiler are there, skipped
otherwise (the pure-Python modules are the reference and the fallback; the server logs which
one runs). ``.ci/setup`` builds it in place: ``python setup.py build_ext --inplace``."""

from __future__ import annotations

from setuptools import Extension, setup

EXTENSIONS = [
    ("proxy.wire._cscan", "proxy/wire/_cscan.pyx"),
    ("proxy.sql._cfastkey", "proxy/sql/_cfastkey.pyx"),
    ("proxy.shard._crows", "proxy/shard/_crows.pyx"),
]

try:
    from Cython.Build import cythonize
except ImportError:  # no Cython: the pure-Python hot path
    ext_modules = []
else:
    ext_modules = cythonize(
        [Extension(name, [source]) for name, source in EXTENSIONS],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )
    for extension in ext_modules:
        # A failed compile (no C compiler, no Python headers) skips the extension with a
        # warning instead of failing the install (cythonize drops the flag: set it here).
        extension.optional = True

setup(ext_modules=ext_modules)
