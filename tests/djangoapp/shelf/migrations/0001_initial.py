"""The shelf app's first migration (made by ``manage.py makemigrations``, Django 5.2.19)."""

from typing import ClassVar

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: ClassVar[list[tuple[str, str]]] = []

    operations: ClassVar[list[migrations.operations.base.Operation]] = [
        migrations.CreateModel(
            name="Book",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("title", models.CharField(max_length=200)),
                ("isbn", models.CharField(max_length=17, unique=True)),
                ("pages", models.PositiveIntegerField(default=0)),
                ("price", models.DecimalField(decimal_places=2, max_digits=8, null=True)),
                ("published", models.DateField(null=True)),
                ("added", models.DateTimeField(auto_now_add=True)),
                ("notes", models.JSONField(default=dict)),
            ],
        ),
    ]
