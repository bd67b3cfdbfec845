"""Django's own test runner runs these through the proxy (``manage.py test --keepdb``)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.test import TestCase, TransactionTestCase

from tests.djangoapp.shelf.models import Book


class BookTests(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        Book.objects.create(title="Dune", isbn="978-0441172719", pages=412, price=Decimal("9.99"))
        Book.objects.create(
            title="Solaris — Солярис 🚀",
            isbn="978-0156027601",
            pages=204,
            published=datetime.date(1961, 6, 1),
            notes={"tags": ["sf", "ocean"], "rating": 5},
        )

    def test_query_update_aggregate(self) -> None:
        self.assertEqual(Book.objects.count(), 2)
        self.assertEqual(Book.objects.get(isbn="978-0156027601").title, "Solaris — Солярис 🚀")
        Book.objects.filter(pages__gt=300).update(pages=F("pages") + 1)
        self.assertEqual(Book.objects.aggregate(total=Sum("pages"))["total"], 617)
        self.assertEqual(Book.objects.get(title="Dune").price, Decimal("9.99"))
        solaris = Book.objects.get(published__year=1961)
        self.assertEqual(solaris.notes["tags"], ["sf", "ocean"])

    def test_unique_isbn_and_savepoints(self) -> None:
        with self.assertRaises(IntegrityError), transaction.atomic():
            Book.objects.create(title="Dune again", isbn="978-0441172719")
        Book.objects.filter(title="Dune").delete()
        self.assertEqual(
            list(Book.objects.values_list("title", flat=True)), ["Solaris — Солярис 🚀"]
        )


class FlushTests(TransactionTestCase):
    """A TransactionTestCase: Django empties the tables after it (TRUNCATE, foreign key
    checks off and on)."""

    def test_commit(self) -> None:
        Book.objects.create(title="Kept", isbn="1")
        self.assertTrue(Book.objects.filter(title="Kept").exists())
