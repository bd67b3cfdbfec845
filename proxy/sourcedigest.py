"""The digest of a compiled module's source: the one definition both setup.py (writing the
manifest, ``proxy/compiled.txt``) and ``proxy/__init__.py`` (loading an extension only while
its source still has the digest it was built from) use.

It imports nothing but the standard library: setup.py loads this file by its path, before the
package (and its compiled parts) can be imported, on a clean clone too.
"""

from __future__ import annotations

import hashlib
import os


def source_digest(source: str) -> str:
    """The digest of a module's source (``.py``) and its augmenting ``.pxd``, if any."""
    digest = hashlib.sha256()
    for path in (source, source[: -len(".py")] + ".pxd"):
        if os.path.exists(path):
            with open(path, "rb") as code:
                digest.update(code.read())
    return digest.hexdigest()
