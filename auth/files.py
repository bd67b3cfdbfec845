"""Private files at rest: the catalog (it holds password hashes), the catalog secret, the catalog
password file and the log file.

Files shardgate creates are created mode 0600, and the directories it creates for them 0700
(the mode is given to ``open``/``mkdir`` itself, so there is never a moment when the file is
open to others, and no process-wide umask is touched: other threads may be creating files).
SQLite creates its side files (``-wal``, ``-shm``, ``-journal``) with the mode of the database
file, so a catalog file created 0600 keeps them 0600 too.

An existing file that group or others can access is refused with one line naming the ``chmod``
to run — when the file belongs to the user shardgate runs as (as OpenSSH treats private key
files): a file owned by another user (a secret bind-mounted read-only by Docker, which cannot
change its mode) is that owner's arrangement, and shardgate could not fix its mode anyway.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "create_private_file",
    "exposure",
    "make_private_dirs",
    "open_private_append",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# Permission bits that let group or others in.
_SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, each one this creates mode 0700 (existing
    directories are left as they are)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        # mkdir's mode is filtered by the umask; 0700 is never wider than asked.
        os.chmod(path, PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; whether this created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def open_private_append(path: str | Path, encoding: str | None = None) -> io.TextIOWrapper:
    """``path`` opened for appending text, created 0600 if missing."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE_MODE)
    return open(fd, "a", encoding=encoding)


def exposure(paths: Iterable[Path]) -> str | None:
    """One line saying which of ``paths`` (those that exist and belong to this user) group or
    others can access, and the ``chmod`` that fixes it; None when all are private."""
    exposed: list[tuple[Path, int]] = []
    uid = os.geteuid()
    for path in paths:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid == uid and mode & _SHARED_BITS:
            exposed.append((path, mode))
    if not exposed:
        return None
    if len(exposed) == 1:
        path, mode = exposed[0]
        what = f"{path} is open to group or others (mode {mode:04o})"
    else:
        listed = ", ".join(f"{path} (mode {mode:04o})" for path, mode in exposed)
        what = f"{listed} are open to group or others"
    names = " ".join(_shell_word(str(path)) for path, _ in exposed)
    return f"{what}; run `chmod 600 {names}`"


def _shell_word(text: str) -> str:
    """``text`` as one shell word (quoted only when it needs to be)."""
    if text and all(c.isalnum() or c in "/._-+:@%,=" for c in text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"
