from array import array

# The compiled twin of proxy.shard.rows.split_rows_pure (see _crows.pyx).
def split_rows(
    sql: str,
    pos: int,
    column: int,
    low: int,
    high: int,
    modulus: int,
    backslash: bool,
    ansi_quotes: bool,
    limit: int,
) -> tuple[int, int, array[int], int] | None: ...
