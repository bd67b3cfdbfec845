"""The app's one model."""

from __future__ import annotations

from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    isbn = models.CharField(max_length=17, unique=True)
    pages = models.PositiveIntegerField(default=0)
    price = models.DecimalField(max_digits=8, decimal_places=2, null=True)
    published = models.DateField(null=True)
    added = models.DateTimeField(auto_now_add=True)
    notes = models.JSONField(default=dict)

    def __str__(self) -> str:
        return str(self.title)
