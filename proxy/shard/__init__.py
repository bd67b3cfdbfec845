"""The sharded-database data path's pure parts (issue #15, ``sharding.md``).

``placement`` computes where a shard key value lives, bit-exact with PolarDB-X 1.0 (DRDS);
``values`` turns a value as SQL gives it into the key DRDS hashes, as MariaDB would convert it;
``ddl`` reads DRDS's ``DBPARTITION BY`` / ``TBPARTITION BY`` / ``BROADCAST`` clauses of CREATE
TABLE and the sequence statements; ``sequences`` hands out GROUP sequence values from ranges
reserved in the catalog. Routing, scatter execution and rewriting build on them.
"""
