"""A small Django project run against the proxy by tests/e2e/test_django.py (``manage.py test
--keepdb`` with Django's MySQL backend on PyMySQL)."""
