"""Settings of the Django project tests/e2e/test_django.py runs through the proxy.

The database is a logical database of the proxy, reached as its administrator; the test
database is that same database (``TEST NAME``): tenants cannot create databases, so Django's
test runner runs with ``--keepdb``, and its ``CREATE DATABASE`` of the logical database gets
MySQL's 1007 ("database exists"), which is what ``--keepdb`` expects.
"""

from __future__ import annotations

import os

SECRET_KEY = "shardgate-test-only"  # a test project's, not a secret
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["tests.djangoapp.shelf"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
_NAME = os.environ["SHARDGATE_DJANGO_DATABASE"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ["SHARDGATE_DJANGO_HOST"],
        "PORT": os.environ["SHARDGATE_DJANGO_PORT"],
        "USER": os.environ["SHARDGATE_DJANGO_USER"],
        "PASSWORD": os.environ["SHARDGATE_DJANGO_PASSWORD"],
        "NAME": _NAME,
        "OPTIONS": {"charset": "utf8mb4"},
        "TEST": {"NAME": _NAME},
    }
}
