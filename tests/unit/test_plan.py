"""proxy.plan.plan: what each command means, from the table in plan_cases.txt (a real SQLite
catalog, no MariaDB), and the fast path's memoized decision proven equal to the command loop's
by a property test over generated statements and grant changes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.catalog import OPERATOR, Catalog, CatalogSnapshot
from auth.privileges import Priv
from proxy.plan.plan import (
    COM_CHANGE_USER,
    COM_PING,
    COM_QUIT,
    COM_RESET_CONNECTION,
    COM_SET_OPTION,
    COM_STATISTICS,
    COM_STMT_CLOSE,
    COM_STMT_EXECUTE,
    COM_STMT_FETCH,
    COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
    NO_EFFECTS,
    AnsweredExecution,
    Command,
    Deny,
    FieldList,
    Forward,
    InitDb,
    Kill,
    NoReply,
    Ok,
    Plan,
    Prepare,
    PrepareAnswered,
    Prepared,
    ProcessKill,
    Query,
    Quit,
    Reauthenticate,
    Relay,
    RunAccountStatement,
    SessionView,
    ShowDatabases,
    ShowDigest,
    ShowEvents,
    ShowNotes,
    ShowProcesslist,
    ShowStatus,
    Simple,
    StatementCommand,
    Statistics,
    UseDatabase,
    plan,
    relayed_statement,
)
from proxy.plan.rewrite import IdentityValues
from proxy.sql.analyze import Kind, analyze, analyze_uncached, cache_clear, cached_shape

CASES_FILE = Path(__file__).with_name("plan_cases.txt")
IDENTITY = IdentityValues("u@%", "u@127.0.0.1", 5, "proxyhost", 3306, "/srv/", "")
_SIMPLE = {
    "!PING": COM_PING,
    "!QUIT": COM_QUIT,
    "!CHANGE_USER": COM_CHANGE_USER,
    "!RESET_CONNECTION": COM_RESET_CONNECTION,
    "!STATISTICS": COM_STATISTICS,
    "!SET_OPTION": COM_SET_OPTION,
}
_ON_PREPARED = {
    "!EXECUTE": COM_STMT_EXECUTE,
    "!FETCH": COM_STMT_FETCH,
    "!RESET": COM_STMT_RESET,
    "!CLOSE": COM_STMT_CLOSE,
    "!LONG_DATA": COM_STMT_SEND_LONG_DATA,
}


def _read_file() -> tuple[list[str], list[tuple[int, str]]]:
    grants: list[str] = []
    cases: list[tuple[int, str]] = []
    section = ""
    for lineno, line in enumerate(CASES_FILE.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip()
            continue
        if section == "[grants]":
            grants.append(line)
        else:
            assert section == "[cases]", f"line {lineno}: outside a section"
            cases.append((lineno, line))
    return grants, cases


GRANTS, CASES = _read_file()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSnapshot]:
    base = tmp_path_factory.mktemp("plan")
    catalog = Catalog.open("sqlite:///catalog.db", base)
    try:
        catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
        catalog.create_database("otherdb", "s1", "otherdb", "sg_otherdb", "Admin#pw2", "Ro#pw34")
        for line in GRANTS:
            name, *targets = line.split()
            user, _, host = name.partition("@")
            account = catalog.create_account(user, host, "Secret#123", "easydb", OPERATOR, "")
            for target in targets:
                level, _, privs = target.partition("=")
                db, _, table = level.partition(".")
                held = Priv(0)
                for priv in privs.split(","):
                    held |= Priv[priv]
                catalog.set_privileges(
                    account.id, db, None if table == "*" else table, held, OPERATOR, ""
                )
        catalog.refresh()
        yield catalog.snapshot()
    finally:
        catalog.close()


def _view(snapshot: CatalogSnapshot, words: list[str]) -> tuple[SessionView, list[str]]:
    user, db = words[0], words[1]
    account = snapshot.find_account(user, "%")
    assert account is not None, user
    rest = words[2:]
    flags = set()
    while rest and rest[0] in ("notes", "bound"):
        flags.add(rest.pop(0))
    view = SessionView(
        account,
        "127.0.0.1",
        None if db == "@-" else db[1:],
        has_notes="notes" in flags,
        bound="bound" in flags,
        identity=IDENTITY,
    )
    return view, rest


def _prepared(sql: str, db: str | None) -> Prepared | None:
    if sql == "-":
        return None
    [statement] = analyze_uncached(sql, db)
    # (the statements the proxy answers itself are prepared as such: PrepareAnswered)
    answered = statement.kind not in (Kind.QUERY, Kind.SESSION)
    return Prepared(statement, sql, answered=answered)


def _command(text: str, db: str | None) -> Command:
    if not text.startswith("!"):
        return Query(tuple(analyze_uncached(text, db)), text)
    verb, _, arg = text.partition(" ")
    if verb in _SIMPLE:
        return Simple(_SIMPLE[verb])
    if verb in _ON_PREPARED:
        return StatementCommand(_ON_PREPARED[verb], 1, _prepared(arg, db))
    if verb == "!INIT_DB":
        return InitDb(arg)
    if verb == "!FIELD_LIST":
        return FieldList(arg)
    if verb == "!PREPARE":
        return Prepare(tuple(analyze_uncached(arg, db)), arg)
    if verb == "!KILL":
        return ProcessKill(int(arg))
    if verb == "!UNKNOWN":
        return Simple(int(arg, 16))
    raise AssertionError(text)


def _describe(decided: Plan) -> str:
    """The plan in the table's notation."""
    if isinstance(decided, Relay):
        effects = decided.effects
        words = ["Relay", decided.response.name]
        if effects.binds:
            words.append("bind=" + ",".join(sorted(b.replace(" ", "_") for b in effects.binds)))
        if effects.releases:
            words.append(
                "release=" + ",".join(sorted(b.replace(" ", "_") for b in effects.releases))
            )
        if effects.readback:
            words.append("readback=" + ",".join(effects.readback))
        if effects.replay:
            words.append("replay")
        if effects.hold:
            words.append("hold")
        if effects.resets:
            words.append("resets")
        if effects.prepares is not None:
            words.append("prepares")
        if decided.rewrite:
            words.append(f"rewrite={len(decided.rewrite)}")
        if decided.kills:
            words.append("kills=" + ",".join(str(k.connection_id) for k in decided.kills))
        return " ".join(words)
    if isinstance(decided, Deny):
        return f"Deny {decided.error.errno}"
    if isinstance(decided, PrepareAnswered):
        columns = f" columns={len(decided.columns)}" if decided.columns else ""
        return "PrepareAnswered" + columns
    if isinstance(decided, AnsweredExecution):
        return "Answered " + _describe(decided.plan)
    if isinstance(decided, Forward):
        return "Forward closes" if decided.closes is not None else "Forward"
    if isinstance(decided, UseDatabase):
        return f"UseDatabase {decided.name}"
    if isinstance(decided, ShowDatabases):
        return ("ShowDatabases " + ",".join(decided.names)).strip()
    if isinstance(decided, ShowProcesslist):
        return "ShowProcesslist full" if decided.full else "ShowProcesslist"
    if isinstance(decided, ShowDigest):
        return f"ShowDigest {decided.database}"
    if isinstance(decided, Kill):
        return f"Kill {decided.connection_id}" + (" query" if decided.query_only else "")
    if isinstance(decided, Ok) and decided.notes:
        return "Ok note=" + ",".join(str(code) for code, _ in decided.notes)
    if isinstance(decided, ShowStatus):
        return f"ShowStatus {decided.pattern}" if decided.pattern is not None else "ShowStatus"
    if isinstance(decided, ShowNotes):
        return (
            "ShowNotes"
            + (" count" if decided.count else "")
            + (" errors" if decided.errors else "")
        )
    for kind in (
        ShowEvents,
        Statistics,
        RunAccountStatement,
        Ok,
        NoReply,
        Reauthenticate,
        Quit,
    ):
        if isinstance(decided, kind):
            return kind.__name__
    raise AssertionError(decided)


@pytest.mark.parametrize(("lineno", "line"), CASES, ids=[f"L{n}" for n, _ in CASES])
def test_plan_table(snapshot: CatalogSnapshot, lineno: int, line: str) -> None:
    left, sep, expected = line.partition("==>")
    assert sep, f"{CASES_FILE.name}:{lineno}: no ==>"
    words = left.split(maxsplit=4)
    view, rest = _view(snapshot, words)
    # the command is the rest of the line after the account, database and flags
    head = len(words[0]) + 1
    text = left[left.index(words[1], head) + len(words[1]) :].strip()
    for flag in ("notes", "bound"):
        if text.startswith(flag + " ") or text == flag:
            text = text[len(flag) :].strip()
    del rest
    got = _describe(plan(_command(text, view.current_db), view, snapshot))
    assert got == expected.strip(), f"{CASES_FILE.name}:{lineno}: {text!r}"


def test_the_table_covers_every_plan() -> None:
    kinds = {line.partition("==>")[2].split()[0] for _, line in CASES}
    assert kinds == {
        "Relay",
        "Deny",
        "PrepareAnswered",
        "Answered",
        "Forward",
        "UseDatabase",
        "ShowDatabases",
        "ShowProcesslist",
        "ShowDigest",
        "ShowNotes",
        "ShowEvents",
        "ShowStatus",
        "Statistics",
        "Kill",
        "RunAccountStatement",
        "Ok",
        "NoReply",
        "Reauthenticate",
        "Quit",
    }


# --------------------------------------------------------------------------------------------
# The fast path makes the command loop's decision


@dataclass(frozen=True)
class _Grant:
    table: str
    privs: Priv


_TABLES = ("t1", "t2", "t3", "sbtest1")
_STATEMENTS = st.sampled_from(
    [
        "SELECT c FROM sbtest1 WHERE id={n}",
        "SELECT * FROM t1 WHERE a = {n}",
        "SELECT * FROM t1 JOIN t2 ON t1.a = t2.a WHERE t1.b > {n}",
        "INSERT INTO t2 VALUES ({n}, 'x')",
        "UPDATE t3 SET a = {n} WHERE id = 1",
        "DELETE FROM t1 WHERE id = {n}",
        "SELECT (SELECT MAX(a) FROM t2) FROM t3 LIMIT {n}",
        "REPLACE INTO t1 VALUES ({n})",
        "SELECT * FROM t4 WHERE id = {n}",
        "SELECT @x := {n}",
        "SELECT GET_LOCK('a', {n})",
        "SELEC {n}",
        "SELECT * FROM otherdb.t1 WHERE id = {n}",
        "SELECT {n}",
        "BEGIN",
        "COMMIT",
        "SHOW WARNINGS",
        "SELECT * FROM information_schema.TABLES WHERE TABLE_ROWS > {n}",
        "LOCK TABLES t1 READ, t2 WRITE",
        "UNLOCK TABLES",
        "UPDATE t3 SET a = a + {n}",
        "DELETE FROM t2 LIMIT {n}",
    ]
)
_GRANTS = st.lists(
    st.builds(
        _Grant,
        st.sampled_from(_TABLES),
        st.sampled_from([Priv.SELECT, Priv.INSERT, Priv.UPDATE, Priv.DELETE, Priv(15), Priv(0)]),
    ),
    max_size=6,
)


@pytest.fixture(scope="module")
def grant_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    catalog = Catalog.open("sqlite:///catalog.db", tmp_path_factory.mktemp("fastplan"))
    catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
    catalog.create_account("fastuser", "%", "Secret#123", "easydb", OPERATOR, "")
    try:
        yield catalog
    finally:
        catalog.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    rounds=st.lists(
        st.tuples(_GRANTS, st.lists(st.tuples(_STATEMENTS, st.integers(0, 99)), min_size=1)),
        min_size=1,
        max_size=3,
    )
)
def test_fast_path_decides_like_the_command_loop(
    grant_catalog: Catalog, rounds: list[tuple[list[_Grant], list[tuple[str, int]]]]
) -> None:
    """For every statement the fast path can take (its analysis is cached by the fast key), the
    plan it memoizes -- relayed_statement of the cache entry -- is the plan the command loop
    makes from the full analysis, after any change of grants."""
    cache_clear()
    for grants, statements in rounds:
        account = grant_catalog.snapshot().find_account("fastuser", "%")
        assert account is not None
        for table in _TABLES:
            held = Priv(0)
            for grant in grants:
                if grant.table == table:
                    held |= grant.privs
            grant_catalog.set_privileges(account.id, "easydb", table, held, OPERATOR, "")
        grant_catalog.refresh()
        snapshot = grant_catalog.snapshot()
        account = snapshot.account(account.id)
        assert account is not None
        view = SessionView(account, "127.0.0.1", "easydb")
        for template, n in statements:
            sql = template.format(n=n)
            loop = plan(Query(tuple(analyze(sql, "easydb")), sql), view, snapshot)
            hit = cached_shape(sql, "easydb")
            if hit is None:
                continue  # not a fast-path statement: the command loop alone decides
            _digest, entry = hit
            fast = relayed_statement(entry, view, snapshot)
            if isinstance(fast, Relay) and fast.effects is NO_EFFECTS:
                # what the fast path forwards, the command loop forwards the same way
                assert isinstance(loop, Relay), (sql, loop)
                assert (loop.response, loop.effects) == (fast.response, fast.effects), sql
            elif isinstance(loop, Relay) and loop.effects is NO_EFFECTS:
                pytest.fail(f"the fast path would not relay {sql!r}: {fast}")
            if isinstance(loop, Deny) and isinstance(fast, Deny):
                # (a 1064 names the statement's own text; the cache entry another's)
                assert loop.error.errno == fast.error.errno, sql


def test_a_prepared_text_ignore_space_reads_otherwise_keeps_its_lexing() -> None:
    """``count (v)`` is the built-in under IGNORE_SPACE, a stored function without it: the
    shard preparing the text again under another sql_mode would read another statement."""
    from proxy.plan.plan import prepared_lexing
    from proxy.sql.lexer import LexMode

    lexing = (LexMode(), None, "utf-8")
    assert prepared_lexing(b"SELECT count (v) FROM t WHERE id = ?", lexing) == lexing
    assert prepared_lexing(b"SELECT v FROM t WHERE trim\n(v) = ?", lexing) == lexing
    assert prepared_lexing(b"SELECT count(v), concat (v) FROM t WHERE id = ?", lexing) is None
