"""GROUP sequence values per node (proxy/shard/sequences.py): the allocator alone, and nodes
sharing a catalog (SQLite and MySQL) reserving at once."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auth.catalog import Catalog, CatalogError, UnknownSequenceError
from auth.model import SequenceRange, partition_layout
from proxy.shard.sequences import SequenceAllocator, next_values


def test_the_allocator_serves_its_ranges_in_order() -> None:
    allocator = SequenceAllocator(batch=10)
    assert allocator.take("db", "s", 1, 1) is None
    assert allocator.wanted("db", "s", 3) == 10 and allocator.wanted("db", "s", 25) == 25
    allocator.add("db", "s", SequenceRange(100, 103, 1))
    allocator.add("DB", "S", SequenceRange(200, 205, 1))
    assert allocator.wanted("db", "s", 3) == 10 and allocator.wanted("db", "s", 25) == 25
    assert allocator.take("db", "s", 2, 1) == [100, 101]
    # One statement's values are consecutive (102 cannot run on into 200: left unused).
    assert allocator.take("db", "s", 3, 1) == [200, 201, 202]
    assert allocator.take("db", "s", 3, 1) is None  # two left: nothing taken
    assert allocator.take("db", "s", 2, 1) == [203, 204]
    allocator.add("db", "s", SequenceRange(300, 302, 1))
    allocator.add("db", "s", SequenceRange(302, 306, 1))
    assert allocator.take("db", "s", 5, 1) == [300, 301, 302, 303, 304]  # adjacent ranges
    assert allocator.take("db", "other", 1, 1) is None
    with pytest.raises(ValueError):
        allocator.take("db", "s", 0, 1)
    with pytest.raises(ValueError):
        SequenceAllocator(batch=0)


def test_a_newer_generation_drops_the_old_ranges() -> None:
    allocator = SequenceAllocator()
    allocator.add("db", "s", SequenceRange(100, 200, 1))
    assert allocator.take("db", "s", 1, 1) == [100]
    # Seen in a snapshot (ALTER SEQUENCE ... START WITH): the old range goes.
    assert allocator.take("db", "s", 1, 2) is None
    allocator.add("db", "s", SequenceRange(150, 160, 1))  # reserved before the ALTER: dropped
    assert allocator.take("db", "s", 1, 2) is None
    # Seen in a reservation first: the snapshot may lag behind, the range is kept.
    allocator.add("db", "s", SequenceRange(5, 8, 3))
    assert allocator.take("db", "s", 2, 2) == [5, 6]
    allocator.forget("db", "s")
    assert allocator.take("db", "s", 1, 3) is None


@pytest.fixture(params=["sqlite", "mysql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///catalog.db"
    else:
        factory: Callable[..., str] = request.getfixturevalue("mysql_catalog_url")
        yield factory()


def _setup(url: str, base: Path) -> None:
    with Catalog.open(url, base) as catalog:
        parts = partition_layout("sdb", ["s0", "s1"], 4)
        catalog.create_database(
            "sdb", "s0", parts[0].name, "sg_sdb", "Admin#pw1", "Ro#pw12", partitions=parts
        )
        catalog.create_sequence("sdb", "ids", 1)


def test_nodes_sharing_a_catalog_never_hand_out_a_value_twice(
    catalog_url: str, tmp_path: Path
) -> None:
    _setup(catalog_url, tmp_path)
    nodes = [Catalog.open(catalog_url, tmp_path) for _ in range(2)]
    allocators = [SequenceAllocator(batch=50), SequenceAllocator(batch=50)]
    handed: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def session(index: int) -> None:
        node, allocator = nodes[index % 2], allocators[index % 2]
        rng = random.Random(index)
        try:
            for _ in range(150):
                handed[index] += next_values(allocator, node, "sdb", "ids", rng.randint(1, 3))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors
        values = [v for session_values in handed for v in session_values]
        assert len(values) == len(set(values)) >= 600
        for session_values in handed:  # each session's values go up
            assert session_values == sorted(session_values)
        # Every value came from a range reserved in the catalog: none beyond its counter.
        assert max(values) < 1 + len(values) + 2 * 50 + 2 * 3
    finally:
        for node in nodes:
            node.close()


def test_a_statements_values_are_consecutive_across_nodes(catalog_url: str, tmp_path: Path) -> None:
    """A multi-row INSERT's values run without a gap, as InnoDB gives them: drivers compute
    the later rows' ids from the first (Connector/J's getGeneratedKeys after a rewritten
    batch: LAST_INSERT_ID() + i). A node short of values handed out the rest of its range and
    the start of the next, another node's range between them ([9, 10, 21, 22, 23]: the
    driver's 11 .. 13 are the other node's)."""
    _setup(catalog_url, tmp_path)
    with Catalog.open(catalog_url, tmp_path) as one, Catalog.open(catalog_url, tmp_path) as two:
        a, b = SequenceAllocator(batch=10), SequenceAllocator(batch=10)
        assert next_values(a, one, "sdb", "ids", 8) == list(range(1, 9))
        assert next_values(b, two, "sdb", "ids") == [11]
        assert next_values(a, one, "sdb", "ids", 5) == list(range(21, 26))
        assert next_values(a, one, "sdb", "ids", 5) == list(range(26, 31))
        assert next_values(a, one, "sdb", "ids", 12) == list(range(31, 43))  # one range


def test_alter_sequence_restarts_every_node(catalog_url: str, tmp_path: Path) -> None:
    _setup(catalog_url, tmp_path)
    with Catalog.open(catalog_url, tmp_path) as one, Catalog.open(catalog_url, tmp_path) as two:
        a, b = SequenceAllocator(batch=100), SequenceAllocator(batch=100)
        assert next_values(a, one, "sdb", "ids", 2) == [1, 2]
        assert next_values(b, two, "sdb", "IDS") == [101]
        one.alter_sequence("sdb", "ids", 5000)
        assert next_values(a, one, "sdb", "ids") == [5000]  # its snapshot knows at once
        assert next_values(b, two, "sdb", "ids") == [102]  # not yet: still its range
        two.refresh()
        assert next_values(b, two, "sdb", "ids", 3) == [5100, 5101, 5102]
        with pytest.raises(UnknownSequenceError):
            next_values(a, one, "sdb", "nope")
        one.alter_sequence("sdb", "ids", 9223372036854775806)
        assert next_values(a, one, "sdb", "ids") == [9223372036854775806]
        with pytest.raises(CatalogError, match="no values left"):
            next_values(a, one, "sdb", "ids")


def test_a_sequence_made_again_does_not_hand_out_the_old_ones_ranges(
    catalog_url: str, tmp_path: Path
) -> None:
    """DROP TABLE t then CREATE TABLE t ... AUTO_INCREMENT=n (a dump restored over the
    table): the new AUTO_SEQ_t is newer than the ranges nodes hold of the old one."""
    _setup(catalog_url, tmp_path)
    with Catalog.open(catalog_url, tmp_path) as one, Catalog.open(catalog_url, tmp_path) as two:
        a, b = SequenceAllocator(batch=100), SequenceAllocator(batch=100)
        assert next_values(a, one, "sdb", "ids") == [1]
        assert next_values(b, two, "sdb", "ids") == [101]
        one.drop_sequence("sdb", "ids")
        one.create_sequence("sdb", "ids", 5000)
        assert next_values(a, one, "sdb", "ids") == [5000]
        two.refresh()
        assert next_values(b, two, "sdb", "ids") == [5100]


def test_moving_a_sequence_never_gives_a_value_twice(catalog_url: str, tmp_path: Path) -> None:
    """ALTER TABLE t AUTO_INCREMENT = n: the sequence restarts at n only past every value
    reserved; a node that has not seen the move yet hands out what it holds (below the
    values reserved before it, so unique), one that has takes values from n on."""
    _setup(catalog_url, tmp_path)
    with Catalog.open(catalog_url, tmp_path) as one, Catalog.open(catalog_url, tmp_path) as two:
        a, b = SequenceAllocator(batch=100), SequenceAllocator(batch=100)
        handed = next_values(a, one, "sdb", "ids", 2) + next_values(b, two, "sdb", "ids")
        assert handed == [1, 2, 101]
        assert one.sequence_position("sdb", "IDS") == 201
        version = one.snapshot().version
        # Not past the values reserved: it stays, the nodes keep their ranges.
        assert one.move_sequence("sdb", "ids", 150) == 201
        assert one.snapshot().version == version
        handed += next_values(a, one, "sdb", "ids")
        assert one.move_sequence("sdb", "ids", 1000) == 1000
        assert one.sequence_position("sdb", "ids") == 1000
        handed += next_values(a, one, "sdb", "ids")  # its snapshot knows at once
        handed += next_values(b, two, "sdb", "ids")  # not yet: still its range
        two.refresh()
        handed += next_values(b, two, "sdb", "ids")
        assert handed == [1, 2, 101, 3, 1000, 102, 1100]
        assert one.sequence_position("sdb", "ids") == 1200
        assert one.sequence_position("sdb", "nope") is None
        with pytest.raises(UnknownSequenceError):
            one.move_sequence("sdb", "nope", 5)
