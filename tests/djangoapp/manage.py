"""``manage.py`` of the Django project the proxy is tested with (tests/e2e/test_django.py).

Django's MySQL backend wants ``MySQLdb`` (mysqlclient, which needs C headers to build);
PyMySQL stands in for it, as its ``install_as_MySQLdb`` is made for. PyMySQL reports itself as
mysqlclient 1.4.6, which satisfies Django 5.2's ``mysqlclient 1.4.3 or newer``: nothing is
faked beyond what PyMySQL does itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pymysql


def main() -> None:
    # Run as a script: the checkout's root must be importable (``tests.djangoapp...``).
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    pymysql.install_as_MySQLdb()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djangoapp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
