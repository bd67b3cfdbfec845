"""The models tests/e2e/test_sharded_orm.py drives (app ``tests.e2e.ormshard``, installed there
once Django is set up). Their tables are made by that test with DRDS DDL (``managed =
False``); no foreign key constraint in the database (DRDS refuses them on sharded tables), the
relations the ORM's."""

from __future__ import annotations

from django.db import models


class Region(models.Model):
    """A BROADCAST lookup table."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=20)

    class Meta:
        app_label = "ormshard"
        db_table = "region"
        managed = False


class Order(models.Model):
    """DBPARTITION BY HASH(id), the id from the GROUP sequence."""

    id = models.BigAutoField(primary_key=True)
    buyer = models.CharField(max_length=30)
    total = models.IntegerField()
    region = models.ForeignKey(
        Region, models.DO_NOTHING, null=True, db_constraint=False, related_name="orders"
    )

    class Meta:
        app_label = "ormshard"
        db_table = "orders"
        managed = False


class Item(models.Model):
    """DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2."""

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, models.CASCADE, db_constraint=False, related_name="items")
    sku = models.CharField(max_length=20)
    qty = models.IntegerField()

    class Meta:
        app_label = "ormshard"
        db_table = "item"
        managed = False


class Setting(models.Model):
    """A single table."""

    id = models.AutoField(primary_key=True)
    k = models.CharField(max_length=20, unique=True)
    v = models.IntegerField()

    class Meta:
        app_label = "ormshard"
        db_table = "setting"
        managed = False


class Line(models.Model):
    """DBPARTITION BY HASH(order_id): co-located with its order."""

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, models.CASCADE, db_constraint=False, related_name="lines")
    note = models.CharField(max_length=20)
    qty = models.IntegerField()

    class Meta:
        app_label = "ormshard"
        db_table = "line"
        managed = False
