"""The dashboard as an entry point like the MySQL port: sign-ins count towards the account
lockout (and a locked account cannot sign in), sessions end server-side on every node sharing
the catalog, a busy catalog delays the counting without losing it, malformed input of any
shape gets a clean 4xx, and redirects never echo the Host header.

Two proxies (nodes A and B) share one SQLite catalog and the catalog secret, with
``[server] login_max_failures = 3``; database ``lockdb`` on shard s0.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.accounts import AccountManager, Actor
from auth.catalog import Catalog
from auth.policy import profile_by_name
from auth.urls import sqlite_path
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint, free_port
from proxy.manage.provision import create_database
from proxy.ops.config import load_config
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyThread, write_config
from tests.e2e.test_admin_api import AdminProxy, Api, error_of, start_admin_proxy

PASSWORDS = {"lockdb": "LockAdm#1", "lockdb_RO": "LockRo#1"}
MAX_FAILURES = 3
LOCK_SECONDS = 30
# The per-address sign-in limit stays out of the way of the lockout here.
ADMIN_EXTRA = "login_max_failures = 1000\nlogin_window = 60"
SERVER_EXTRA = f"login_max_failures = {MAX_FAILURES}\nlogin_lock_seconds = {LOCK_SECONDS}"
USERS_URL = "/api/databases/lockdb/users"


@dataclass
class Nodes:
    a: AdminProxy
    b: AdminProxy

    def catalog(self) -> Catalog:
        return self.a.catalog()

    def unlock(self, user: str) -> None:
        with self.catalog() as catalog:
            AccountManager(catalog, profile_by_name("polardbx")).unlock_user(
                Actor.operator(), "lockdb", user
            )
        for node in (self.a, self.b):  # now, rather than at their next poll
            node.server.ctx.catalog.refresh()

    def stored(self, user: str) -> tuple[int, float | None]:
        """(failed logins, lock end) as stored now (a fresh full load)."""
        with self.catalog() as catalog:
            account = catalog.snapshot().find_account(user, "%")
            assert account is not None
            return account.failed_logins, account.locked_until

    def flush(self) -> None:
        for node in (self.a, self.b):
            assert node.server.ctx.bookkeeping.flush(10)


def _second_node(first: AdminProxy) -> AdminProxy:
    """Another proxy on the same configuration (catalog file, secret) but its own ports."""
    text = first.config_path.read_text()
    for old in (first.config.server.port, first.config.admin.port):
        assert text.count(f"port = {old}\n") == 1
        text = text.replace(f"port = {old}\n", f"port = {free_port()}\n")
    path = first.config_path.with_name("node-b.toml")
    path.write_text(text)
    config = load_config(path)
    runner = ProxyThread(config)
    return AdminProxy(config, path, runner, runner.start())


@pytest.fixture(scope="module")
def nodes(shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    base = tmp_path_factory.mktemp("admin-hardening")
    a = start_admin_proxy(
        shards, base, {"lockdb": "s0"}, PASSWORDS, ADMIN_EXTRA, server_extra=SERVER_EXTRA
    )
    try:
        b = _second_node(a)
    except BaseException:
        a.runner.stop()
        raise
    try:
        yield Nodes(a, b)
    finally:
        b.runner.stop()
        a.runner.stop()


@pytest.fixture(autouse=True)
def _unlocked(nodes: Nodes) -> None:
    for user in ("lockdb", "lockdb_RO"):
        nodes.unlock(user)


@pytest.fixture
def client(nodes: Nodes) -> Iterator[Api]:
    api = Api(nodes.a)
    try:
        yield api
    finally:
        api.close()


def mysql_login(env: AdminProxy, user: str, password: str) -> tuple[int, str] | None:
    """None if the MySQL-port login works, else its (errno, message)."""
    try:
        pymysql.connect(
            host="127.0.0.1",
            port=env.proxy_port,
            user=user,
            password=password,
            database=None,
            connect_timeout=10,
        ).close()
    except pymysql.err.OperationalError as error:
        return error.args[0], error.args[1]
    return None


def blocked_text(user: str, ip: str, failures: int = MAX_FAILURES) -> tuple[str, str]:
    """The start and the end of MySQL 8's 3955 sentence (the seconds remaining vary)."""
    return (
        f"Access denied for user '{user}'@'{ip}'. Account is blocked for {LOCK_SECONDS} second(s) ("
    ), f"second(s) remaining) due to {failures} consecutive failed logins."


def assert_blocked(response: httpx.Response, user: str, ip: str) -> None:
    assert response.status_code == 403, response.text
    start, end = blocked_text(user, ip)
    message = error_of(response)
    assert message.startswith(start) and message.endswith(end), message
    assert 0 < int(response.headers["retry-after"]) <= LOCK_SECONDS


# --------------------------------------------------------------------------- lockout


def test_dashboard_and_mysql_port_failures_count_together(nodes: Nodes, client: Api) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert client.login("lockdb", "Wrong#pass1").status_code == 401
    assert nodes.stored("lockdb")[0] == MAX_FAILURES - 1
    # The third failure, on the MySQL port, locks the account.
    errno, _ = mysql_login(nodes.a, "lockdb", "Wrong#pass1") or (0, "")
    assert errno == 3955
    # Now neither door lets the right password in, on either node.
    assert_blocked(client.login("lockdb", PASSWORDS["lockdb"]), "lockdb", client.address)
    other = Api(nodes.b)
    try:
        assert_blocked(other.login("lockdb", PASSWORDS["lockdb"]), "lockdb", other.address)
    finally:
        other.close()
    error = mysql_login(nodes.a, "lockdb", PASSWORDS["lockdb"])
    assert error is not None and error[0] == 3955
    assert client.session()["authenticated"] is False
    # The operator's unlock lets it in again.
    nodes.unlock("lockdb")
    assert client.login("lockdb", PASSWORDS["lockdb"]).status_code == 200


def test_the_lock_is_told_on_the_failure_that_causes_it(nodes: Nodes, client: Api) -> None:
    for _ in range(MAX_FAILURES - 1):
        assert client.login("lockdb", "Wrong#pass1").status_code == 401
    assert_blocked(client.login("lockdb", "Wrong#pass1"), "lockdb", client.address)
    failures, locked_until = nodes.stored("lockdb")
    assert failures == MAX_FAILURES and locked_until is not None
    # The lock is audited in the catalog, as for the MySQL port.
    with nodes.catalog() as catalog:
        record = catalog.audit(limit=1)[0]
    assert record.action == "LOCK ACCOUNT 'lockdb'@'%'" and record.client == client.address


def test_a_dashboard_sign_in_resets_the_count(nodes: Nodes, client: Api) -> None:
    assert mysql_login(nodes.a, "lockdb", "Wrong#pass1") is not None
    assert client.login("lockdb", "Wrong#pass1").status_code == 401
    assert nodes.stored("lockdb")[0] == 2
    assert client.login("lockdb", PASSWORDS["lockdb"]).status_code == 200
    assert nodes.stored("lockdb") == (0, None)
    for _ in range(MAX_FAILURES - 1):
        assert mysql_login(nodes.a, "lockdb", "Wrong#pass1") is not None
    assert mysql_login(nodes.a, "lockdb", PASSWORDS["lockdb"]) is None


def test_any_account_counts_and_unknown_names_lock_nothing(nodes: Nodes, client: Api) -> None:
    # An unknown user: the plain 401, nothing counted anywhere.
    assert error_of(client.login("lockdbx", "Wrong#pass1")) == "Wrong user name or password."
    # The read-only account cannot sign in (403), but its wrong passwords count, as on the
    # MySQL port, and its lock is told the same way.
    assert client.login("lockdb_RO", PASSWORDS["lockdb_RO"]).status_code == 403
    for _ in range(MAX_FAILURES - 1):
        assert client.login("lockdb_RO", "Wrong#pass1").status_code == 401
    assert_blocked(client.login("lockdb_RO", "Wrong#pass1"), "lockdb_RO", client.address)
    error = mysql_login(nodes.a, "lockdb_RO", PASSWORDS["lockdb_RO"])
    assert error is not None and error[0] == 3955
    assert nodes.stored("lockdb") == (0, None)


def test_failed_sign_ins_are_counted_while_the_catalog_is_locked(nodes: Nodes, client: Api) -> None:
    config = nodes.a.config
    held = sqlite3.connect(sqlite_path(config.catalog.url, config.base_dir), isolation_level=None)
    try:
        held.execute("BEGIN EXCLUSIVE")
        for _ in range(MAX_FAILURES):
            started = time.monotonic()
            response = client.login("lockdb", "Wrong#pass1")
            # Answered at once (the lock is not known yet): the count waits in the queue.
            assert response.status_code == 401
            assert time.monotonic() - started < 2.0
        assert nodes.a.server.ctx.bookkeeping.pending == MAX_FAILURES
        held.execute("COMMIT")
    finally:
        held.close()
    nodes.flush()
    failures, locked_until = nodes.stored("lockdb")
    assert failures == MAX_FAILURES and locked_until is not None
    assert_blocked(client.login("lockdb", PASSWORDS["lockdb"]), "lockdb", client.address)


# --------------------------------------------------------------------------- sessions


def _signed_in(env: AdminProxy) -> Api:
    api = Api(env)
    response = api.login("lockdb", PASSWORDS["lockdb"])
    assert response.status_code == 200, response.text
    return api


def _replay(env: AdminProxy, cookie: str) -> Api:
    """A client of its own (another address) carrying a copied session cookie."""
    api = Api(env)
    api.http.cookies.set("shardgate_admin", cookie)
    return api


def test_sign_out_ends_the_session_on_every_node(nodes: Nodes) -> None:
    api = _signed_in(nodes.a)
    cookie = api.http.cookies["shardgate_admin"]
    on_a, on_b = _replay(nodes.a, cookie), _replay(nodes.b, cookie)
    try:
        # The same cookie works on both nodes (one catalog, one secret)...
        assert on_a.http.get(USERS_URL).status_code == 200
        assert on_b.http.get(USERS_URL).status_code == 200
        assert api.http.post("/api/logout", headers=api.headers()).status_code == 200
        # ...and, once signed out, on neither: a replayed cookie is refused everywhere.
        for replay in (_replay(nodes.a, cookie), _replay(nodes.b, cookie)):
            try:
                assert replay.http.get(USERS_URL).status_code == 401
                assert replay.session()["authenticated"] is False
            finally:
                replay.close()
    finally:
        for client in (api, on_a, on_b):
            client.close()


def test_a_sign_out_while_the_catalog_is_locked_reaches_the_other_node_later(
    nodes: Nodes,
) -> None:
    api = _signed_in(nodes.a)
    cookie = api.http.cookies["shardgate_admin"]
    config = nodes.a.config
    held = sqlite3.connect(sqlite_path(config.catalog.url, config.base_dir), isolation_level=None)
    on_a, on_b = _replay(nodes.a, cookie), _replay(nodes.b, cookie)
    try:
        held.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        assert api.http.post("/api/logout", headers=api.headers()).status_code == 200
        assert time.monotonic() - started < 2.0
        assert on_a.http.get(USERS_URL).status_code == 401  # this node knows at once
        assert on_b.http.get(USERS_URL).status_code == 200  # the catalog does not yet
        held.execute("COMMIT")
        nodes.flush()
        assert on_b.http.get(USERS_URL).status_code == 401
    finally:
        if held.in_transaction:
            held.execute("COMMIT")
        held.close()
        for client in (api, on_a, on_b):
            client.close()


def test_a_password_change_ends_the_sessions_on_every_node(nodes: Nodes) -> None:
    api = _signed_in(nodes.a)
    cookie = api.http.cookies["shardgate_admin"]
    on_b = _replay(nodes.b, cookie)
    try:
        assert on_b.http.get(USERS_URL).status_code == 200
        with nodes.catalog() as catalog:
            catalog.reset_builtin_password("lockdb", False, PASSWORDS["lockdb"])  # same text
        assert api.http.get(USERS_URL).status_code == 401
        assert on_b.http.get(USERS_URL).status_code == 401
    finally:
        api.close()
        on_b.close()


def test_signing_in_again_ends_the_previous_session(nodes: Nodes) -> None:
    api = _signed_in(nodes.a)
    old = api.http.cookies["shardgate_admin"]
    assert api.login("lockdb", PASSWORDS["lockdb"]).status_code == 200
    replay = _replay(nodes.b, old)
    try:
        assert api.http.get(USERS_URL).status_code == 200  # the new session
        assert replay.http.get(USERS_URL).status_code == 401  # the old one, anywhere
    finally:
        api.close()
        replay.close()


# --------------------------------------------------------------------------- malformed input


def _post(api: Api, path: str, content: bytes, headers: dict[str, str] | None = None) -> Any:
    return api.http.post(
        path,
        content=content,
        headers={**api.headers(), "Content-Type": "application/json", **(headers or {})},
    )


MALFORMED: list[tuple[str, bytes, int, str]] = [
    ("nested arrays", b"[" * 5000 + b"]" * 5000, 400, "The request body is not valid JSON."),
    (
        "nested objects",
        b'{"a":' * 2000 + b"1" + b"}" * 2000,
        400,
        "The request body is not valid JSON.",
    ),
    ("not UTF-8", b'{"username": "\xff\xfe\xfa"}', 400, "The request body is not valid JSON."),
    ("lone surrogate", b'{"username": "ab\\ud800cd"}', 400, 'Give "username" as a non-empty'),
    ("a list", b'{"username": ["x"]}', 400, 'Give "username" as a non-empty string.'),
    ("an object", b'{"username": {"a": 1}}', 400, 'Give "username" as a non-empty string.'),
    ("null", b'{"username": null}', 400, 'Give "username" as a non-empty string.'),
    ("a huge number", b'{"username": 1e999}', 400, 'Give "username" as a non-empty string.'),
    ("digits", b'{"username": ' + b"9" * 5000 + b"}", 400, "The request body is not valid JSON."),
    ("a number flag", b'{"username": "flagme", "read_only": 1}', 400, 'Give "read_only" as'),
    ("a number host", b'{"username": "hostme", "host": 5}', 400, 'Give "host" as'),
    ("missing", b"{}", 400, 'Give "username" as a non-empty string.'),
    ("not an object", b'"just a string"', 400, "The request body must be a JSON object."),
    ("too large", b'{"username": "' + b"x" * 20000 + b'"}', 413, "The request is too large."),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), [case[1:] for case in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_bodies_get_a_clean_4xx(
    nodes: Nodes, body: bytes, status: int, message: str
) -> None:
    api = _signed_in(nodes.a)
    try:
        response = _post(api, USERS_URL, body)
        assert response.status_code == status, response.text
        assert error_of(response).startswith(message)
    finally:
        api.close()


def test_malformed_sign_ins_and_confirmations(nodes: Nodes, client: Api) -> None:
    client.session()
    surrogate = _post(client, "/api/login", b'{"username": "lockdb", "password": "\\udfff"}')
    assert surrogate.status_code == 400
    assert error_of(surrogate) == "The user name or password is not valid text."
    wrong_type = _post(client, "/api/login", b'{"username": 5, "password": true}')
    assert wrong_type.status_code == 400
    nested = _post(client, "/api/login", b'{"username": ' + b"[" * 3000 + b"]" * 3000 + b"}")
    assert nested.status_code == 400
    assert nodes.stored("lockdb") == (0, None)  # none of that counted as a failed login
    api = _signed_in(nodes.a)
    try:
        reset = USERS_URL + "/plainuser/reset-password"
        for body in (b'{"confirm": 5}', b'{"confirm": ["plainuser"]}', b'{"confirm": null}'):
            response = _post(api, reset, body)
            assert response.status_code == 400
            assert error_of(response).startswith("To confirm")
        long_name = _post(api, USERS_URL + "/" + "x" * 300 + "/reset-password", b"{}")
        assert long_name.status_code == 400
        assert error_of(long_name) == "The user in the address is not valid."
    finally:
        api.close()


def test_a_chunked_body_over_the_limit_is_413(nodes: Nodes) -> None:
    api = _signed_in(nodes.a)

    def chunks() -> Iterator[bytes]:
        yield b'{"username": "'
        for _ in range(40):
            yield b"y" * 1000
        yield b'"}'

    try:
        response = api.http.post(
            USERS_URL,
            content=chunks(),
            headers={**api.headers(), "Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert error_of(response) == "The request is too large."
    finally:
        api.close()


def test_unknown_routes_and_methods_are_json(client: Api) -> None:
    for method, path, status in (
        ("GET", "/api/nothing", 404),
        ("GET", "/api/databases/lockdb/users/", 404),  # no slash redirect
        ("PUT", "/api/login", 405),
        ("GET", "/api/databases/lockdb/users/x/reset-password", 405),
    ):
        response = client.http.request(method, path)
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"error"}
        assert "location" not in response.headers


def test_redirects_never_echo_the_host_header(client: Api) -> None:
    evil = {"Host": "evil.example:1234"}
    dashboard = client.http.get("/", headers=evil)
    assert dashboard.status_code == 303 and dashboard.headers["location"] == "/login"
    for path in ("/login/", "/static", "/api/session/"):
        response = client.http.get(path, headers=evil)
        assert "evil.example" not in response.headers.get("location", ""), path
        assert "evil.example" not in response.text, path
    assert client.login("lockdb", PASSWORDS["lockdb"]).status_code == 200
    signed_in = client.http.get("/login", headers=evil)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    page = client.http.get("/", headers=evil)
    assert page.status_code == 200 and "evil.example" not in page.text


# --------------------------------------------------------------------------- fuzzing

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_fields = st.sampled_from(["username", "password", "read_only", "host", "confirm", "x"])
_bodies = st.one_of(
    st.dictionaries(_fields, _json_values, max_size=4).map(lambda d: json.dumps(d).encode()),
    _json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.just(b"[" * 4000),
)
# Path segments as a client sends them: any text (or bytes, not UTF-8), percent-encoded.
_segments = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30),
    st.binary(min_size=1, max_size=20),
).map(lambda segment: quote(segment, safe=""))
_paths = st.one_of(
    st.just("/login"),  # the HTML forms answer with the page, not JSON
    st.just("/logout"),
    st.just("/api/login"),
    st.just("/api/logout"),
    st.just("/api/session"),
    _segments.map(lambda db: f"/api/databases/{db}/users"),
    st.tuples(_segments, _segments).map(lambda p: f"/api/databases/{p[0]}/users/{p[1]}"),
    st.tuples(_segments, _segments).map(
        lambda p: f"/api/databases/{p[0]}/users/{p[1]}/reset-password"
    ),
    st.just(USERS_URL),
    st.just(USERS_URL + "/fuzzuser"),
)
_content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "text/plain",
        "",
    ]
)


@pytest.fixture(scope="module")
def fuzz_api(nodes: Nodes) -> Iterator[Api]:
    api = _signed_in(nodes.a)
    try:
        yield api
    finally:
        api.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"]),
    path=_paths,
    body=_bodies,
    content_type=_content_types,
)
def test_fuzzed_api_requests_never_fail_the_server(
    fuzz_api: Api, method: str, path: str, body: bytes, content_type: str
) -> None:
    api = fuzz_api
    if not api.session()["authenticated"]:  # a fuzzed request signed it out
        assert api.login("lockdb", PASSWORDS["lockdb"]).status_code == 200
    headers = {**api.headers()}
    if content_type:
        headers["Content-Type"] = content_type
    response = api.http.request(method, path, content=body, headers=headers)
    assert response.status_code < 500, (method, path, body[:100], response.text[:200])
    if response.status_code >= 400 and path.startswith("/api/"):
        assert isinstance(response.json()["error"], str)


# --------------------------------------------------------------------------- a MySQL catalog


def test_a_mysql_catalog_stopped_briefly(
    shards: list[ShardEndpoint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dashboard on a MySQL catalog whose server is killed and restarted: requests that
    need the catalog get a clean 503, failed sign-ins are answered at once and counted once
    the catalog is back, and the session carries on."""
    server = LocalMariaDB(tmp_path / "catalogdb", port=free_port())
    endpoint = server.start()
    proxy: AdminProxy | None = None
    try:
        password = secrets.token_urlsafe(18)
        monkeypatch.setenv("SG_TEST_DASH_CATALOG_PW", password)
        conn = connect_admin(endpoint)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE sgcat_dash")
            cur.execute("CREATE USER 'sgdash'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cur.execute("GRANT ALL PRIVILEGES ON sgcat_dash.* TO 'sgdash'@'127.0.0.1'")
        conn.close()
        url = f"mysql://sgdash@{endpoint.host}:{endpoint.port}/sgcat_dash"
        config_path = tmp_path / "shardgate.toml"
        write_config(config_path, shards, free_port(), SERVER_EXTRA)
        text = config_path.read_text().replace(
            'url = "sqlite:///catalog.db"',
            f'url = "{url}"\npassword_env = "SG_TEST_DASH_CATALOG_PW"',
        )
        config_path.write_text(
            text + f"[admin]\nenabled = true\nport = {free_port()}\n{ADMIN_EXTRA}\n"
        )
        config = load_config(config_path)
        Catalog.migrate(config.catalog.url, config.base_dir)
        with Catalog.open(config.catalog.url, config.base_dir) as catalog:
            asyncio.run(
                create_database(config, catalog, "mydashdb", "s0", "MyDash#adm1", "MyDash#ro1")
            )
        runner = ProxyThread(config)
        proxy = AdminProxy(config, config_path, runner, runner.start())
        api = Api(proxy)
        try:
            assert api.login("mydashdb", "MyDash#adm1").status_code == 200
            assert api.list("mydashdb").status_code == 200
            server.kill()
            listed = api.list("mydashdb")
            assert listed.status_code == 503
            assert (
                error_of(listed) == "The account catalog is unavailable; please try again shortly."
            )
            other = Api(proxy)
            try:
                for _ in range(2):
                    started = time.monotonic()
                    assert other.login("mydashdb", "Wrong#pass1").status_code == 401
                    assert time.monotonic() - started < 3.0
            finally:
                other.close()
            assert proxy.server.ctx.bookkeeping.pending == 2
            server.start()
            assert proxy.server.ctx.bookkeeping.flush(30)
            with Catalog.open(config.catalog.url, config.base_dir) as catalog:
                account = catalog.snapshot().find_account("mydashdb", "%")
                assert account is not None and account.failed_logins == 2
            assert api.list("mydashdb").status_code == 200  # the same session, still valid
        finally:
            api.close()
    finally:
        if proxy is not None:
            proxy.runner.stop()
        server.stop()
