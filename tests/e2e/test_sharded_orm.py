"""Django's ORM on a sharded database: models on tables made with DRDS DDL through the proxy
(a table ``DBPARTITION BY HASH(id)`` with a GROUP-sequence AUTO_INCREMENT id, one split further
``TBPARTITION BY HASH(id)``, a ``BROADCAST`` lookup table the others point to, a single table),
driven as an application drives them -- create, save, bulk_create, get, filter by key and by
other columns, update with F(), delete (with its cascade), get_or_create, update_or_create,
transaction.atomic over several partitions committed and rolled back, select_related,
prefetch_related, exists, count, order_by with slices, values_list -- and each answer compared
with the same operations on a plain MariaDB database (the twin, reached directly), ids aside
(the sequence's values are not the plain table's 1, 2, 3): rows are compared by their other
columns, and each id the ORM was given is read back by key.

Django runs in this process with two database aliases, ``sharded`` (the proxy) and ``plain``
(shard s0 itself); PyMySQL stands in for mysqlclient as in tests/e2e/test_django.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv, run_isolated
from tests.e2e.sharded import plain_twin, sharded_database

DB = "ormshard"
PLAIN = "ormshard_plain"
PASSWORD = "Orm#shard1"
NOT_YET = "This version of shardgate doesn't yet support"
DERIVED = (
    "a derived table on sharded tables with GROUP BY, aggregates, DISTINCT, LIMIT or window"
    " functions (each partition would compute its own)"
)

REGION = "CREATE TABLE region (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NOT NULL)"
ORDERS = (
    "CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, buyer VARCHAR(30) NOT NULL,"
    " total INT NOT NULL, region_id INT NULL, KEY (buyer))"
)
ITEMS = (
    "CREATE TABLE item (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL,"
    " sku VARCHAR(20) NOT NULL, qty INT NOT NULL)"
)
SETTING = (
    "CREATE TABLE setting (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(20) NOT NULL UNIQUE,"
    " v INT NOT NULL)"
)
LINE = (
    "CREATE TABLE line (id BIGINT AUTO_INCREMENT PRIMARY KEY, order_id BIGINT NOT NULL,"
    " note VARCHAR(20) NOT NULL, qty INT NOT NULL)"
)
SHARDED_DDL = [
    REGION + " BROADCAST",
    ORDERS + " DBPARTITION BY HASH(id)",
    ITEMS + " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
    SETTING,
    "CREATE TABLE setting_b (k VARCHAR(20) PRIMARY KEY) BROADCAST",
    LINE + " DBPARTITION BY HASH(order_id)",
    "CREATE TABLE setting_u (id INT AUTO_INCREMENT PRIMARY KEY, k VARCHAR(20) UNIQUE)"
    " DBPARTITION BY HASH(id)",
]
PLAIN_DDL = [REGION, ORDERS, ITEMS, SETTING, LINE]


def _django(proxy: ProxyEnv) -> Any:
    """Django set up in this process with the aliases ``sharded`` and ``plain``."""
    pymysql.install_as_MySQLdb()
    import django
    from django.conf import settings

    shard = proxy.shards[0]
    databases = {
        "default": {},
        "sharded": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": proxy.host,
            "PORT": str(proxy.port),
            "USER": DB,
            "PASSWORD": PASSWORD,
            "NAME": DB,
            "OPTIONS": {"charset": "utf8mb4"},
        },
        "plain": {
            "ENGINE": "django.db.backends.mysql",
            "HOST": shard.host,
            "PORT": str(shard.port),
            "USER": shard.user,
            "PASSWORD": shard.password,
            "NAME": PLAIN,
            "OPTIONS": {"charset": "utf8mb4"},
        },
    }
    if not settings.configured:
        settings.configure(
            DATABASES=databases,
            INSTALLED_APPS=["tests.e2e.ormshard"],
            USE_TZ=True,
            TIME_ZONE="UTC",
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        )
        django.setup()
    return django


@pytest.fixture(scope="module")
def databases(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """The sharded database and its plain twin, with their tables."""
    with (
        sharded_database(proxy, DB, PASSWORD, setup=SHARDED_DDL),
        plain_twin(proxy, PLAIN, PLAIN_DDL),
    ):
        yield proxy


def isolated(body: Callable[[Any], None]) -> Callable[[ProxyEnv], None]:
    """``body(models)`` run in a forked child (run_isolated) with Django set up there: Django
    and PyMySQL's ``install_as_MySQLdb`` change process-wide state (a second copy of PyMySQL's
    modules under ``MySQLdb``) that other test modules of the run would inherit."""

    def run(proxy: ProxyEnv) -> None:
        _django(proxy)
        from django.db import connections

        from tests.e2e.ormshard import models

        try:
            body(models)
        finally:
            connections.close_all()

    return run


def scenario(m: Any, alias: str) -> list[Any]:
    """What an application does, on ``alias``: the observations, free of ids."""
    from django.db import transaction
    from django.db.models import Count, F, Prefetch, Sum

    seen: list[Any] = []
    regions = m.Region.objects.using(alias)
    orders = m.Order.objects.using(alias)
    items = m.Item.objects.using(alias)

    # create / save: the id comes back (the sequence's value through the insert id).
    north = regions.create(name="north")
    south = m.Region(name="south")
    south.save(using=alias)
    assert north.pk is not None and south.pk is not None and north.pk != south.pk
    assert regions.get(pk=south.pk).name == "south"
    ann = orders.create(buyer="ann", total=10, region=north)
    bob = m.Order(buyer="bob", total=20, region=south)
    bob.save(using=alias)
    assert orders.get(pk=ann.pk).buyer == "ann" and orders.get(pk=bob.pk).buyer == "bob"
    bob.total = 21
    bob.save(using=alias)  # an UPDATE by pk
    assert orders.get(pk=bob.pk).total == 21

    # bulk_create: every row stored, each id given back reading its own row.
    made = orders.bulk_create(
        [
            m.Order(buyer=f"b{i}", total=i * 3 % 7, region=north if i % 2 else south)
            for i in range(12)
        ]
    )
    ids = [o.pk for o in made]
    seen.append(("bulk ids given", all(i is not None for i in ids), len(set(ids))))
    if all(i is not None for i in ids):
        for o in made:
            got = orders.get(pk=o.pk)
            assert (got.buyer, got.total) == (o.buyer, o.total), (o.pk, got.buyer, o.buyer)
    made = list(orders.filter(buyer__startswith="b").exclude(buyer="bob").order_by("buyer"))
    seen.append(("bulk rows", [(o.buyer, o.total) for o in made]))

    # get(pk), filter(pk__in), a filter on other columns (scatter), exists, count.
    some = [made[1].pk, made[4].pk, made[7].pk, ann.pk]
    seen.append(("pk__in", sorted(orders.filter(pk__in=some).values_list("buyer", flat=True))))
    seen.append(("in_bulk", sorted(o.buyer for o in orders.in_bulk(some).values())))
    seen.append(("scatter", sorted(orders.filter(total=3).values_list("buyer", flat=True))))
    seen.append(("exists", orders.filter(buyer="b5").exists(), orders.filter(buyer="x").exists()))
    seen.append(("exists pk", orders.filter(pk=ann.pk).exists()))
    seen.append(("count", orders.count(), orders.filter(total__gte=3).count()))
    seen.append(("sum", orders.aggregate(s=Sum("total"), n=Count("id"))))

    # order_by + slices (the merge), values_list, distinct.
    seen.append(("ordered", list(orders.order_by("total", "buyer").values_list("buyer", "total"))))
    seen.append(("top3", list(orders.order_by("-total", "buyer").values_list("buyer")[:3])))
    seen.append(("page", list(orders.order_by("buyer").values_list("buyer", flat=True)[2:5])))
    seen.append(("first", orders.order_by("buyer").first().buyer))
    seen.append(("last", orders.order_by("buyer").last().buyer))
    seen.append(
        ("distinct", list(orders.order_by("total").values_list("total", flat=True).distinct()))
    )
    seen.append(
        (
            "grouped",
            list(
                orders.values("total")
                .annotate(n=Count("id"))
                .order_by("total")
                .values_list("total", "n")
            ),
        )
    )

    # select_related to the broadcast table; prefetch_related of the split table.
    seen.append(
        (
            "select_related",
            sorted(
                (o.buyer, o.region.name)
                for o in orders.select_related("region").filter(total__lt=3)
            ),
        )
    )
    for o in made[:4]:
        items.bulk_create([m.Item(order=o, sku=f"{o.buyer}-{k}", qty=k) for k in range(3)])
    items.create(order=ann, sku="ann-0", qty=5)
    prefetched = orders.filter(buyer__in=["ann", "b0", "b1", "b2", "b3"]).prefetch_related("items")
    seen.append(
        ("prefetch", sorted((o.buyer, sorted(i.sku for i in o.items.all())) for o in prefetched))
    )
    seen.append(
        (
            "prefetch region",
            sorted(
                (r.name, sorted(o.buyer for o in r.orders.all()))
                for r in regions.prefetch_related(
                    Prefetch("orders", queryset=orders.filter(total__gt=4))
                )
            ),
        )
    )
    seen.append(("reverse", sorted(ann.items.using(alias).values_list("sku", flat=True))))
    seen.append(("item count", items.count(), items.filter(qty=2).count()))

    # joins with the broadcast table (filter, group by its column), Q of keys, bulk_update.
    from django.db.models import Avg, Max, Min, Q

    seen.append(
        ("join filter", sorted(orders.filter(region__name="north").values_list("buyer", flat=True)))
    )
    seen.append(
        (
            "join group",
            list(
                orders.values("region__name")
                .annotate(n=Count("id"), s=Sum("total"))
                .order_by("region__name")
            ),
        )
    )
    seen.append(("aggregates", orders.aggregate(a=Avg("total"), lo=Min("total"), hi=Max("total"))))
    seen.append(
        (
            "q or",
            sorted(orders.filter(Q(pk=ann.pk) | Q(pk=made[3].pk)).values_list("buyer", flat=True)),
        )
    )
    seen.append(("exclude in", orders.exclude(pk__in=some).count()))
    seen.append(
        (
            "F compare",
            sorted(
                orders.filter(total__gt=F("total") - 1, total__lt=3).values_list("buyer", flat=True)
            ),
        )
    )
    seen.append(
        ("iterator", sorted(o.buyer for o in orders.filter(total__gte=5).iterator(chunk_size=2)))
    )
    seen.append(
        ("earliest", orders.earliest("total", "buyer").buyer, orders.latest("total", "buyer").buyer)
    )
    changed = list(orders.filter(pk__in=[made[5].pk, made[6].pk, made[9].pk]))
    for o in changed:
        o.total += 100
    seen.append(("bulk_update", orders.bulk_update(changed, ["total"])))
    seen.append(
        ("bulk updated", sorted(orders.filter(total__gte=100).values_list("buyer", "total")))
    )
    orders.filter(total__gte=100).update(total=F("total") - 100)
    regions.filter(name="south").update(name="South")
    seen.append(("broadcast update", sorted(regions.values_list("name", flat=True))))
    made_items = items.bulk_create([m.Item(order=made[8], sku=f"x{k}", qty=k) for k in range(5)])
    for it in made_items:
        assert items.get(pk=it.pk).sku == it.sku
    made_items_kept = list(items.filter(sku="ann-0"))
    items.bulk_create([m.Item(order=made[8], sku="x9", qty=9)], ignore_conflicts=True)
    seen.append(("ignore_conflicts", items.filter(sku="x9").count()))
    items.filter(sku__startswith="x").delete()

    # save() of an unchanged row: its UPDATE matches one row (CLIENT_FOUND_ROWS), else
    # Django would INSERT the row again.
    for model, obj in ((m.Order, ann), (m.Region, north), (m.Item, made_items_kept[0])):
        again_obj = model.objects.using(alias).get(pk=obj.pk)
        again_obj.save(using=alias)
        seen.append(("unchanged save", model.__name__, model.objects.using(alias).count()))
    seen.append(("unchanged update", orders.filter(pk=ann.pk).update(total=F("total"))))
    seen.append(("unchanged scatter", orders.filter(total__lt=100).update(total=F("total"))))
    seen.append(("unchanged broadcast", regions.filter(pk=north.pk).update(name="north")))

    # a big bulk_create (its rows split without lexing them, RETURNING or not)
    big = orders.bulk_create([m.Order(buyer=f"big{i:03d}", total=i) for i in range(300)])
    for o in big[::37]:
        assert orders.get(pk=o.pk).buyer == o.buyer
    seen.append(("big", orders.filter(buyer__startswith="big").count(), len({o.pk for o in big})))
    orders.filter(buyer__startswith="big").delete()

    # a nested atomic rolled back (a savepoint over several partitions), the outer kept
    with transaction.atomic(using=alias):
        kept = [orders.create(buyer=f"k{i}", total=50) for i in range(3)]
        try:
            with transaction.atomic(using=alias):
                orders.create(buyer="lost", total=51)
                orders.filter(pk__in=[k.pk for k in kept]).update(total=52)
                regions.create(name="lostregion")
                raise _Rollback
        except _Rollback:
            pass
        orders.filter(pk=kept[0].pk).update(total=53)
    seen.append(
        ("nested", sorted(orders.filter(total__gte=50, total__lt=60).values_list("buyer", "total")))
    )
    seen.append(("nested regions", regions.filter(name="lostregion").exists()))
    orders.filter(pk__in=[k.pk for k in kept]).delete()

    # update() through a relation (on MariaDB: UPDATE t ... WHERE t.id IN (SELECT U0.id FROM
    # t U0 JOIN region ...), co-located), bulk_create as an upsert of given ids.
    seen.append(
        ("update join", orders.filter(region__name="north").update(total=F("total") + 1000))
    )
    seen.append(
        ("updated join", sorted(orders.filter(total__gte=1000).values_list("buyer", "total")))
    )
    seen.append(
        ("update join back", orders.filter(region__name="north").update(total=F("total") - 1000))
    )
    upserted = list(orders.filter(buyer__in=["b3", "b4"]).order_by("buyer"))
    for o in upserted:
        o.total = 600
    upserted.append(m.Order(id=9_000_001, buyer="ups", total=601))
    done = orders.bulk_create(upserted, update_conflicts=True, update_fields=["total"])
    seen.append(("upsert ids", [o.pk for o in done] == [o.pk for o in upserted]))
    seen.append(("upserted", sorted(orders.filter(total__gte=600).values_list("buyer", "total"))))
    orders.filter(total__gte=600).update(total=6)
    orders.filter(pk=9_000_001).delete()

    # a child table partitioned by its parent's key (co-located with orders): joins both ways
    lines = m.Line.objects.using(alias)
    for o in made[3:7]:
        lines.bulk_create([m.Line(order=o, note=f"{o.buyer}/{k}", qty=k) for k in range(2)])
    one_line = lines.create(order=ann, note="ann/0", qty=3)
    assert lines.get(pk=one_line.pk).note == "ann/0"
    seen.append(
        (
            "line join",
            sorted(lines.filter(order__buyer__in=["b3", "b4"]).values_list("note", flat=True)),
        )
    )
    seen.append(
        (
            "line select_related",
            sorted((x.note, x.order.buyer) for x in lines.select_related("order")),
        )
    )
    seen.append(
        ("line reverse", sorted(orders.filter(lines__qty=1).values_list("buyer", flat=True)))
    )
    seen.append(
        (
            "line count",
            sorted(orders.annotate(n=Count("lines")).filter(n__gt=0).values_list("buyer", "n")),
        )
    )
    one_line.qty = 4
    one_line.save(using=alias, update_fields=["qty", "note"])  # (not the shard key)
    seen.append(("line saved", lines.get(pk=one_line.pk).qty))

    # update() with F(), by key and scattered.
    seen.append(("update key", orders.filter(pk=ann.pk).update(total=F("total") + 5)))
    seen.append(("update scatter", orders.filter(total__lt=3).update(total=F("total") * 10 + 1)))
    seen.append(("update in", orders.filter(pk__in=some).update(buyer=F("buyer"))))
    seen.append(("after update", sorted(orders.values_list("buyer", "total"))))

    # delete(): one row by key, then a scatter with its cascade to the items.
    seen.append(("delete key", orders.filter(pk=bob.pk).delete()))
    victims = orders.filter(buyer__in=["b0", "b1"])
    seen.append(("delete cascade", victims.delete()))
    seen.append(("items left", sorted(items.values_list("sku", flat=True))))
    made[2].delete()
    seen.append(
        (
            "instance delete",
            orders.filter(buyer="b2").exists(),
            items.filter(sku__startswith="b2").count(),
        )
    )

    # get_or_create, update_or_create.
    zed, created = orders.get_or_create(buyer="zed", defaults={"total": 7, "region": north})
    again, created2 = orders.get_or_create(buyer="zed", defaults={"total": 8})
    seen.append(("get_or_create", created, created2, again.pk == zed.pk, again.total))
    upd, created3 = orders.update_or_create(buyer="zed", defaults={"total": 70})
    new, created4 = orders.update_or_create(buyer="yan", defaults={"total": 71})
    seen.append(
        ("update_or_create", created3, upd.pk == zed.pk, created4, orders.get(pk=new.pk).total)
    )
    seen.append(
        (
            "zed",
            list(
                orders.filter(buyer__in=["zed", "yan"])
                .order_by("buyer")
                .values_list("buyer", "total")
            ),
        )
    )

    # transaction.atomic over several partitions: committed, and rolled back.
    with transaction.atomic(using=alias):
        many = [orders.create(buyer=f"t{i}", total=100 + i) for i in range(6)]
        orders.filter(pk=many[0].pk).update(total=F("total") + 1)
        m.Region(name="west").save(using=alias)
    seen.append(("atomic", sorted(orders.filter(total__gte=100).values_list("buyer", "total"))))
    before = sorted(orders.values_list("buyer", "total"))
    try:
        with transaction.atomic(using=alias):
            for i in range(6):
                orders.create(buyer=f"r{i}", total=200 + i)
            orders.filter(total__gte=100).update(total=0)
            orders.filter(pk=ann.pk).delete()
            regions.create(name="gone")
            raise _Rollback
    except _Rollback:
        pass
    seen.append(("rolled back", sorted(orders.values_list("buyer", "total")) == before))
    seen.append(("regions", sorted(regions.values_list("name", flat=True))))

    # the single table.
    settings = m.Setting.objects.using(alias)
    one = settings.create(k="a", v=1)
    settings.bulk_create([m.Setting(k="b", v=2), m.Setting(k="c", v=3)])
    settings.filter(k="b").update(v=F("v") + 1)
    seen.append(
        ("single", settings.get(pk=one.pk).k, list(settings.order_by("k").values_list("k", "v")))
    )
    settings.update_or_create(k="c", defaults={"v": 30})
    settings.filter(k="a").delete()
    seen.append(("single after", list(settings.order_by("k").values_list("k", "v"))))
    return seen


class _Rollback(Exception):
    pass


def test_django_orm_on_sharded_tables_answers_as_one_mariadb(databases: ProxyEnv) -> None:
    run_isolated(isolated(compare), databases, crashes_allowed=0)


def compare(models: Any) -> None:
    plain = scenario(models, "plain")
    sharded = scenario(models, "sharded")
    for want, got in zip(plain, sharded, strict=True):
        assert got == want


def test_insert_returning_gives_each_row_its_id_in_the_statements_order(
    databases: ProxyEnv,
) -> None:
    run_isolated(isolated(returning_ids), databases, crashes_allowed=0)


def returning_ids(models: Any) -> None:
    """What Django sends on MariaDB 10.5+ (``INSERT ... RETURNING id``): the proxy answers the
    ids itself, row by row as the statement gives them (the rows go to several partitions),
    with the column definitions MariaDB gives."""
    from django.db import connections

    def returned(alias: str, sql: str) -> tuple[list[Any], list[Any]]:
        with connections[alias].cursor() as cur:
            cur.execute(sql)
            fields = cur.cursor._result.fields
            described = [
                (f.name, f.org_name, f.table_name, f.org_table, f.type_code, f.flags, f.length)
                for f in fields
            ]
            return [tuple(r) for r in cur.fetchall()], described

    buyers = [f"ret{i}" for i in range(10)]
    rows = ", ".join(f"('{b}', {i})" for i, b in enumerate(buyers))
    cases = [
        (f"INSERT INTO orders (buyer, total) VALUES {rows} RETURNING id", "orders", buyers),
        (
            f"INSERT INTO orders (buyer, total) VALUES {rows} RETURNING `orders`.`id` AS x, ID",
            "orders",
            buyers,
        ),
        (
            "INSERT INTO region (name) VALUES ('r1'), ('r2') RETURNING region.id",
            "region",
            ["r1", "r2"],
        ),
        (
            "INSERT INTO item (order_id, sku, qty) VALUES (1, 'i1', 1), (2, 'i2', 2), (3, 'i3', 3)"
            " RETURNING id",
            "item",
            ["i1", "i2", "i3"],
        ),
    ]
    column = {"orders": "buyer", "region": "name", "item": "sku"}
    for sql, table, names in cases:
        plain_rows, plain_fields = returned("plain", sql)
        got_rows, got_fields = returned("sharded", sql)
        assert got_fields == plain_fields, sql
        for alias, found in (("plain", plain_rows), ("sharded", got_rows)):
            assert len(found) == len(names), (alias, sql)
            with connections[alias].cursor() as cur:
                for row, name in zip(found, names, strict=True):
                    assert len(set(row)) == 1, (alias, sql, row)
                    cur.execute(f"SELECT {column[table]} FROM {table} WHERE id = %s", (row[0],))
                    assert cur.fetchall() == ((name,),), (alias, sql, row)
    # a row giving its id: that id, the others the sequence's
    found, _ = returned(
        "sharded",
        "INSERT INTO orders (id, buyer, total) VALUES (NULL, 'g1', 1), (987654, 'g2', 2)"
        " RETURNING id",
    )
    assert found[1] == (987654,) and found[0][0] != 987654


def test_what_the_orm_asks_that_sharding_refuses_is_1235_naming_why(databases: ProxyEnv) -> None:
    run_isolated(isolated(refusals), databases, crashes_allowed=0)


def refusals(models: Any) -> None:
    """Joins and subqueries that are not co-located, as Django writes them: the plain database
    answers, the sharded one refuses with 1235 naming the reason (sharding.md), and the
    session goes on."""
    from django.db import connections
    from django.db.utils import NotSupportedError

    def attempts(alias: str) -> list[Any]:
        orders = models.Order.objects.using(alias)
        items = models.Item.objects.using(alias)
        return [
            lambda: list(items.select_related("order").values_list("sku", "order__buyer")),
            lambda: list(orders.filter(items__qty=2).values_list("buyer", flat=True)),
            lambda: list(orders.filter(id__in=items.values("order_id")).values_list("buyer")),
            lambda: list(orders.annotate(n=Count("items")).values_list("buyer", "n")),
            lambda: items.filter(order__buyer="b3").update(qty=0),
            lambda: orders.filter(total__in=orders.filter(buyer="b3").values("total")).update(
                total=0
            ),
            lambda: orders.order_by("buyer")[2:5].count(),
            lambda: orders.values("total").distinct().count(),
        ]

    from django.db.models import Count

    for attempt in attempts("plain"):
        attempt()
    split = "join of sharded tables {} and {} with different partitioning (TBPARTITIONS {} and {})"
    reasons = [
        split.format("item", "orders", 2, 1),
        split.format("orders", "item", 1, 2),
        split.format("item", "orders", 2, 1),
        "LEFT JOIN of sharded table item not on the shard key of a sharded table it is joined"
        " to (in its ON)",
        "a statement on several sharded tables (item and orders)",
        "a subquery on sharded table orders not tied to the shard key of the enclosing"
        " SELECT's sharded table (inner.key = outer.key in its WHERE)",
        DERIVED,
        DERIVED,
    ]
    for attempt, reason in zip(attempts("sharded"), reasons, strict=True):
        with pytest.raises(NotSupportedError) as refused:
            attempt()
        assert refused.value.args == (1235, f"{NOT_YET} '{reason}'")
    returning = "INSERT ... RETURNING into sharded table orders of anything but its"
    returning += " AUTO_INCREMENT column id (the proxy answers the ids itself)"
    # save() of a row of a table sharded by another column than its id: Django sets every
    # column, the shard key too (to the value it has), which is an UPDATE of the shard key.
    line_rows = models.Line.objects.using("sharded")
    parent = models.Order.objects.using("sharded").create(buyer="lp", total=1)
    line = line_rows.create(order=parent, note="l", qty=1)
    line.qty = 2
    with pytest.raises(NotSupportedError) as refused:
        line.save()
    assert refused.value.args == (
        1235,
        f"{NOT_YET} 'UPDATE of the shard key of table line (order_id, even to the value a row"
        " holds: leave it out of SET)'",
    )
    line.save(update_fields=["qty"])
    assert line_rows.get(pk=line.pk).qty == 2
    with connections["sharded"].cursor() as cur:
        for sql, reason in (
            (
                "INSERT IGNORE INTO orders (buyer, total) VALUES ('i', 1) RETURNING id",
                "INSERT IGNORE ... RETURNING into sharded table orders",
            ),
            ("INSERT INTO orders (buyer, total) VALUES ('i', 1) RETURNING buyer", returning),
            ("INSERT INTO orders (buyer, total) VALUES ('i', 1) RETURNING *", returning),
            (
                "INSERT INTO orders (buyer, total) VALUES ('i', 1)"
                " ON DUPLICATE KEY UPDATE total = 2 RETURNING id",
                "INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING into sharded table orders of a"
                " row without its id (give every row's or none)",
            ),
            (
                "INSERT INTO setting_u (id, k) VALUES (1, 'i')"
                " ON DUPLICATE KEY UPDATE k = 'j' RETURNING id",
                "INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING into sharded table setting_u,"
                " which has a unique key other than its primary key id",
            ),
            (
                "INSERT INTO setting_b (k) VALUES ('i') RETURNING id",
                "INSERT ... RETURNING into broadcast table setting_b without an AUTO_INCREMENT"
                " column",
            ),
        ):
            with pytest.raises(NotSupportedError) as refused:
                cur.execute(sql)
            assert refused.value.args == (1235, f"{NOT_YET} '{reason}'")
        cur.execute("SELECT COUNT(*) FROM orders WHERE buyer = 'i'")
        assert cur.fetchall() == ((0,),)
