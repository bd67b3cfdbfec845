"""The admin HTTP server started with the proxy: its JSON API, sign-in, sessions, CSRF, rate
limiting and administrator scope; and the CLI's changes reaching the running proxy.

The proxy (with ``[admin] enabled = true``) runs in a thread on the session's real MariaDB
shards, with its own catalog and databases ``apidb`` (shard s0) and ``apiother`` (s1).
Every client binds its own loopback address (127.0.0.N) so that the per-address sign-in limit
of one test does not reach another.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymysql
import pytest
from click.testing import CliRunner

from auth.accounts import AccountManager, Actor
from auth.catalog import Catalog
from auth.passwords import verify_password
from auth.policy import profile_by_name
from auth.privileges import ALL_PRIVILEGES, Priv
from proxy.backend.mirror import mirror_user
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.manage.admin.ratelimit import LoginLimiter
from proxy.manage.admin.server import AdminServer, session_secret
from proxy.manage.cli import main
from proxy.manage.provision import create_database
from proxy.ops.config import AdminConfig, Config, ConfigError, load_config, parse_config
from proxy.server import ProxyServer
from tests.e2e.conftest import ProxyThread, self_signed_cert, write_config

PASSWORDS = {
    "apidb": "ApiAdmin#1",
    "apidb_RO": "ApiRead#1",
    "apiother": "Other#adm1",
    "apiother_RO": "Other#ro1",
}
DATABASES = {"apidb": "s0", "apiother": "s1"}
MAX_FAILURES = 3
POLICY = profile_by_name("polardbx")


# --------------------------------------------------------------------------- environment


@dataclass
class AdminProxy:
    """A running proxy with its admin server."""

    config: Config
    config_path: Path
    runner: ProxyThread
    server: ProxyServer

    @property
    def base_url(self) -> str:
        assert self.server.admin is not None
        return self.server.admin.url

    @property
    def proxy_port(self) -> int:
        return self.server.port

    def catalog(self) -> Catalog:
        """A separate catalog handle, as the CLI would have."""
        return Catalog.open(self.config.catalog.url, self.config.base_dir)

    def operator(self) -> AccountManager:
        return AccountManager(self.catalog(), POLICY)

    def connect(self, user: str, password: str, database: str) -> pymysql.Connection[Any]:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.proxy_port,
            user=user,
            password=password,
            database=database,
            autocommit=True,
            connect_timeout=10,
            read_timeout=30,
        )

    def can_login(self, user: str, password: str, database: str) -> bool:
        try:
            conn = self.connect(user, password, database)
        except pymysql.err.OperationalError as error:
            assert error.args[0] == 1045, error
            return False
        conn.close()
        return True

    def login_within(self, user: str, password: str, database: str, seconds: float) -> float:
        """Seconds until a login with ``password`` works (fails the test after ``seconds``)."""
        start = time.monotonic()
        while not self.can_login(user, password, database):
            assert time.monotonic() - start < seconds, f"{user} still cannot log in"
            time.sleep(0.05)
        return time.monotonic() - start

    def mirror_of(self, user: str, database: str = "apidb") -> str:
        """The name of ``user``'s mirrored account on ``database``'s shard."""
        with self.catalog() as catalog:
            account = catalog.snapshot().find_account(user, "%")
        assert account is not None
        return mirror_user(self.config.catalog_secret(), account.id, database)

    def mirror_grants(self, mirror: str, database: str = "apidb") -> list[str] | None:
        """SHOW GRANTS of the mirrored account ``mirror`` but its USAGE line (None: there is
        no such account), read as the shard's administrator."""
        shard = self.config.shard(DATABASES[database])
        with (
            pymysql.connect(
                host=shard.host, port=shard.port, user=shard.user, password=shard.password
            ) as conn,
            conn.cursor() as cur,
        ):
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s", (mirror,))
            if not cur.fetchall():
                return None
            cur.execute(f"SHOW GRANTS FOR '{mirror}'@'%'")
            return [row[0].split(" TO ")[0] for row in cur.fetchall()][1:]

    def clear_rate_limits(self) -> None:
        admin = self.server.admin
        assert isinstance(admin, AdminServer) and admin.app is not None
        app = admin.app

        async def clear() -> None:
            app.limiter.clear()

        asyncio.run_coroutine_threadsafe(clear(), self.runner.loop).result(10)


def start_admin_proxy(
    shards: list[ShardEndpoint],
    base: Path,
    databases: dict[str, str],
    passwords: dict[str, str],
    admin_extra: str = "",
    server_extra: str = "",
) -> AdminProxy:
    config_path = base / "shardgate.toml"
    write_config(config_path, shards, free_port(), server_extra)
    with config_path.open("a") as out:
        out.write(
            f'[admin]\nenabled = true\nhost = "127.0.0.1"\nport = {free_port()}\n{admin_extra}\n'
        )
    config = load_config(config_path)
    with Catalog.open(config.catalog.url, config.base_dir) as catalog:
        for name, shard in databases.items():
            asyncio.run(
                create_database(
                    config, catalog, name, shard, passwords[name], passwords[f"{name}_RO"]
                )
            )
    runner = ProxyThread(config)
    server = runner.start()
    return AdminProxy(config, config_path, runner, server)


_addresses = itertools.count(10)


def next_address() -> str:
    """A loopback address of its own for one client (127.0.0.10 ... 127.0.0.250)."""
    n = next(_addresses)
    assert n < 250
    return f"127.0.0.{n}"


class Api:
    """An httpx client keeping its session cookie and CSRF token."""

    def __init__(self, env: AdminProxy, address: str | None = None) -> None:
        self.env = env
        self.address = address or next_address()
        self.http = httpx.Client(
            base_url=env.base_url,
            transport=httpx.HTTPTransport(local_address=self.address),
            timeout=30,
            follow_redirects=False,
        )
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def session(self) -> dict[str, Any]:
        response = self.http.get("/api/session")
        assert response.status_code == 200
        data: dict[str, Any] = response.json()
        self.csrf = data["csrf_token"]
        return data

    def headers(self, csrf: str | None = None) -> dict[str, str]:
        token = self.csrf if csrf is None else csrf
        return {"X-CSRF-Token": token} if token else {}

    def login(self, user: str, password: str) -> httpx.Response:
        if not self.csrf:
            self.session()
        response = self.http.post(
            "/api/login", json={"username": user, "password": password}, headers=self.headers()
        )
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
        return response

    def users_url(self, database: str, user: str | None = None) -> str:
        return f"/api/databases/{database}/users" + ("" if user is None else f"/{user}")

    def list(self, database: str = "apidb") -> httpx.Response:
        return self.http.get(self.users_url(database))

    def create(
        self, body: dict[str, Any], database: str = "apidb", csrf: str | None = None
    ) -> httpx.Response:
        return self.http.post(self.users_url(database), json=body, headers=self.headers(csrf))

    def reset(
        self,
        user: str,
        database: str = "apidb",
        body: dict[str, Any] | None = None,
        csrf: str | None = None,
    ) -> httpx.Response:
        return self.http.post(
            self.users_url(database, user) + "/reset-password",
            json={"confirm": user} if body is None else body,
            headers=self.headers(csrf),
        )

    def delete(
        self,
        user: str,
        database: str = "apidb",
        body: dict[str, Any] | None = None,
        csrf: str | None = None,
    ) -> httpx.Response:
        return self.http.request(
            "DELETE",
            self.users_url(database, user),
            json={"confirm": user} if body is None else body,
            headers=self.headers(csrf),
        )


def error_of(response: httpx.Response) -> str:
    message = response.json()["error"]
    assert isinstance(message, str)
    return message


@pytest.fixture(scope="module")
def env(
    shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminProxy]:
    base = tmp_path_factory.mktemp("admin-api")
    proxy = start_admin_proxy(
        shards,
        base,
        DATABASES,
        PASSWORDS,
        f"login_max_failures = {MAX_FAILURES}\nlogin_window = 60",
    )
    operator = proxy.operator()
    operator.create_user_for_database(
        Actor.operator(), "apiother", "otheruser", "%", "Other#usr1", False
    )
    operator.create_user_for_database(Actor.operator(), "apidb", "plainuser", "%", "Plain#usr1")
    try:
        yield proxy
    finally:
        proxy.runner.stop()


@pytest.fixture(autouse=True)
def _fresh_limits(request: pytest.FixtureRequest) -> None:
    if "env" in request.fixturenames:
        request.getfixturevalue("env").clear_rate_limits()


@pytest.fixture
def api(env: AdminProxy) -> Iterator[Api]:
    """Signed in as apidb's administrator."""
    client = Api(env)
    response = client.login("apidb", PASSWORDS["apidb"])
    assert response.status_code == 200, response.text
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def anonymous(env: AdminProxy) -> Iterator[Api]:
    client = Api(env)
    try:
        yield client
    finally:
        client.close()


def names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["username"] for row in response.json()["users"]]


# --------------------------------------------------------------------------- sign-in


def test_session_before_sign_in(anonymous: Api) -> None:
    data = anonymous.session()
    assert data["authenticated"] is False
    assert data["database"] is None and data["user"] is None
    assert len(data["csrf_token"]) >= 32


def test_sign_in_as_administrator(anonymous: Api) -> None:
    response = anonymous.login("apidb", PASSWORDS["apidb"])
    assert response.status_code == 200
    data = response.json()
    assert data["authenticated"] is True
    assert data["database"] == "apidb" and data["user"] == "apidb"
    session = anonymous.session()
    assert session["authenticated"] is True and session["database"] == "apidb"
    assert session["csrf_token"] == data["csrf_token"]


def test_sign_in_rotates_the_csrf_token(anonymous: Api) -> None:
    before = anonymous.session()["csrf_token"]
    response = anonymous.login("apidb", PASSWORDS["apidb"])
    assert response.json()["csrf_token"] != before


def test_wrong_password(anonymous: Api) -> None:
    response = anonymous.login("apidb", "Wrong#pass1")
    assert response.status_code == 401
    assert error_of(response) == "Wrong user name or password."
    assert anonymous.session()["authenticated"] is False
    assert anonymous.list().status_code == 401


def test_unknown_user_gets_the_same_answer(anonymous: Api) -> None:
    response = anonymous.login("nobody", "Wrong#pass1")
    assert response.status_code == 401
    assert error_of(response) == "Wrong user name or password."


def test_empty_password_refused(anonymous: Api) -> None:
    response = anonymous.login("apidb", "")
    assert response.status_code == 401


def test_read_only_account_refused(anonymous: Api) -> None:
    response = anonymous.login("apidb_RO", PASSWORDS["apidb_RO"])
    assert response.status_code == 403
    assert error_of(response) == (
        "Only a database's administrator account can sign in to the dashboard."
    )
    assert anonymous.session()["authenticated"] is False
    assert anonymous.list().status_code == 401


def test_ordinary_user_refused(anonymous: Api) -> None:
    response = anonymous.login("plainuser", "Plain#usr1")
    assert response.status_code == 403
    assert anonymous.session()["authenticated"] is False


def test_login_needs_csrf(anonymous: Api) -> None:
    anonymous.session()
    body = {"username": "apidb", "password": PASSWORDS["apidb"]}
    missing = anonymous.http.post("/api/login", json=body)
    assert missing.status_code == 403
    assert "CSRF" in error_of(missing)
    wrong = anonymous.http.post("/api/login", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    assert anonymous.session()["authenticated"] is False


def test_login_with_a_fresh_client_has_no_token(env: AdminProxy) -> None:
    client = Api(env)
    try:
        body = {"username": "apidb", "password": PASSWORDS["apidb"]}
        response = client.http.post("/api/login", json=body, headers={"X-CSRF-Token": "guess"})
        assert response.status_code == 403
    finally:
        client.close()


def test_login_body_must_be_json(anonymous: Api) -> None:
    anonymous.session()
    response = anonymous.http.post(
        "/api/login",
        content=f"username=apidb&password={PASSWORDS['apidb']}",
        headers={**anonymous.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    response = anonymous.http.post(
        "/api/login",
        content="{not json",
        headers={**anonymous.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_login_is_post_only(anonymous: Api) -> None:
    response = anonymous.http.get(
        "/api/login", params={"username": "apidb", "password": PASSWORDS["apidb"]}
    )
    assert response.status_code == 405
    assert anonymous.session()["authenticated"] is False


def test_logout(api: Api) -> None:
    assert api.http.post("/api/logout").status_code == 403  # CSRF required
    assert api.list().status_code == 200
    response = api.http.post("/api/logout", headers=api.headers())
    assert response.status_code == 200
    assert api.list().status_code == 401
    assert api.session()["authenticated"] is False


def test_session_cookie_flags(anonymous: Api) -> None:
    anonymous.session()
    response = anonymous.login("apidb", PASSWORDS["apidb"])
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("shardgate_admin=")
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "path=/" in lowered
    assert "secure" not in lowered  # plain HTTP here; see the TLS test
    assert PASSWORDS["apidb"] not in cookie


def test_tampered_cookie_is_no_session(api: Api) -> None:
    value = api.http.cookies["shardgate_admin"]
    api.http.cookies.clear()
    api.http.cookies.set("shardgate_admin", value[:-4] + "AAAA")
    assert api.list().status_code == 401


def test_security_headers(anonymous: Api) -> None:
    for path in ("/api/session", "/login"):
        response = anonymous.http.get(path)
        assert response.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "server" not in response.headers


def test_password_reset_by_the_operator_ends_sessions(env: AdminProxy, api: Api) -> None:
    assert api.list().status_code == 200
    with env.catalog() as catalog:
        catalog.reset_builtin_password("apidb", False, "Changed#adm1")
    try:
        assert api.list().status_code == 401
        assert api.session()["authenticated"] is False  # a fresh CSRF token, too
        assert api.login("apidb", PASSWORDS["apidb"]).status_code == 401
        assert api.login("apidb", "Changed#adm1").status_code == 200
        assert api.list().status_code == 200
    finally:
        with env.catalog() as catalog:
            catalog.reset_builtin_password("apidb", False, PASSWORDS["apidb"])


# --------------------------------------------------------------------------- HTML forms


def test_form_sign_in_and_out(env: AdminProxy) -> None:
    client = Api(env)
    try:
        page = client.http.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        login = client.http.get("/login")
        assert login.status_code == 200
        assert 'method="post" action="/login"' in login.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert match is not None
        token = match.group(1)
        form = {"csrf_token": token, "username": "apidb", "password": PASSWORDS["apidb"]}
        assert client.http.post("/login", data={**form, "csrf_token": "bad"}).status_code == 403
        wrong = client.http.post("/login", data={**form, "password": "Wrong#pass1"})
        assert wrong.status_code == 401
        assert "Wrong user name or password." in wrong.text
        assert "Wrong#pass1" not in wrong.text
        done = client.http.post("/login", data=form)
        assert done.status_code == 303 and done.headers["location"] == "/"
        dashboard = client.http.get("/")
        assert dashboard.status_code == 200
        assert "User Management" in dashboard.text
        match = re.search(r'name="csrf-token" content="([^"]+)"', dashboard.text)
        assert match is not None
        token = match.group(1)
        assert client.http.post("/logout", data={"csrf_token": "bad"}).status_code == 403
        out = client.http.post("/logout", data={"csrf_token": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.http.get("/").status_code == 303
    finally:
        client.close()


def test_form_sign_in_refuses_read_only(env: AdminProxy) -> None:
    client = Api(env)
    try:
        login = client.http.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert match is not None
        response = client.http.post(
            "/login",
            data={
                "csrf_token": match.group(1),
                "username": "apidb_RO",
                "password": PASSWORDS["apidb_RO"],
            },
        )
        assert response.status_code == 403
        assert "administrator account" in response.text
    finally:
        client.close()


def test_static_assets(anonymous: Api) -> None:
    assert anonymous.http.get("/static/app.js").status_code == 200
    assert anonymous.http.get("/static/style.css").status_code == 200


# --------------------------------------------------------------------------- rate limiting


def test_rate_limit_per_account(env: AdminProxy) -> None:
    clients = [Api(env) for _ in range(MAX_FAILURES + 1)]
    try:
        for client in clients[:MAX_FAILURES]:  # one failure from each address
            assert client.login("apiother", "Wrong#pass1").status_code == 401
        last = clients[-1]
        blocked = last.login("apiother", PASSWORDS["apiother"])  # even the right password
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        assert "Too many failed sign-in attempts" in error_of(blocked)
        assert last.session()["authenticated"] is False
        # The same address may still sign in to another account.
        assert last.login("apidb", PASSWORDS["apidb"]).status_code == 200
    finally:
        for client in clients:
            client.close()


def test_rate_limit_per_address(env: AdminProxy) -> None:
    client = Api(env)
    other = Api(env)
    try:
        for user in ("nobody1", "nobody2", "nobody3")[:MAX_FAILURES]:
            assert client.login(user, "Wrong#pass1").status_code == 401
        blocked = client.login("apidb", PASSWORDS["apidb"])
        assert blocked.status_code == 429
        assert "retry-after" in blocked.headers
        # Another address signs in to the same account.
        assert other.login("apidb", PASSWORDS["apidb"]).status_code == 200
    finally:
        client.close()
        other.close()


def test_rate_limit_applies_to_the_form(env: AdminProxy) -> None:
    client = Api(env)
    try:
        for _ in range(MAX_FAILURES):
            assert client.login("nobody", "Wrong#pass1").status_code == 401
        login = client.http.get("/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert match is not None
        response = client.http.post(
            "/login",
            data={
                "csrf_token": match.group(1),
                "username": "apidb",
                "password": PASSWORDS["apidb"],
            },
        )
        assert response.status_code == 429
        assert "Too many failed sign-in attempts" in response.text
    finally:
        client.close()


def test_limiter_window_slides() -> None:
    now = [1000.0]
    limiter = LoginLimiter(2, 10.0, clock=lambda: now[0])
    assert limiter.retry_after("a", "u") == 0
    limiter.failed("a", "u")
    now[0] += 4
    limiter.failed("b", "u")
    assert limiter.retry_after("c", "u") == pytest.approx(6.0)  # the account is blocked
    assert limiter.retry_after("a", "v") == 0  # one failure from "a" only
    now[0] += 6.5
    assert limiter.retry_after("c", "u") == 0  # the first failure left the window
    limiter.failed("c", "u")
    assert limiter.retry_after("d", "u") > 0
    limiter.succeeded("u")
    assert limiter.retry_after("d", "u") == 0


def test_limiter_memory_is_bounded() -> None:
    limiter = LoginLimiter(3, 60.0, max_keys=10)
    for n in range(100):
        limiter.failed(f"10.0.0.{n}", f"user{n}")
    assert len(limiter._failures) <= 10


# --------------------------------------------------------------------------- users: list


def test_list_requires_sign_in(anonymous: Api) -> None:
    response = anonymous.list()
    assert response.status_code == 401
    assert error_of(response) == "Please sign in."


def test_list(api: Api) -> None:
    response = api.list()
    assert response.status_code == 200
    data = response.json()
    assert data["database"] == "apidb"
    rows = {row["username"]: row for row in data["users"]}
    assert rows["apidb"] == {
        "username": "apidb",
        "host": "%",
        "read_only": False,
        "protected": True,
    }
    assert rows["apidb_RO"] == {
        "username": "apidb_RO",
        "host": "%",
        "read_only": True,
        "protected": True,
    }
    assert rows["plainuser"]["protected"] is False
    assert "otheruser" not in rows and "apiother" not in rows


# --------------------------------------------------------------------------- users: create


def test_create_read_only_by_default_and_usable_at_once(env: AdminProxy, api: Api) -> None:
    response = api.create({"username": "apireader"})
    assert response.status_code == 201, response.text
    data = response.json()
    assert data["user"] == {
        "username": "apireader",
        "host": "%",
        "read_only": True,
        "protected": False,
    }
    password = data["password"]
    assert len(password) == 20
    POLICY.validate_password(password)
    # Its mirrored account is on the shard when the API answers.
    assert env.mirror_grants(env.mirror_of("apireader")) == [
        "GRANT SELECT, REFERENCES, LOCK TABLES, SHOW VIEW ON `apidb`.*"
    ]
    assert env.login_within("apireader", password, "apidb", 1.0) < 1.0
    with env.connect("apireader", password, "apidb") as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        with pytest.raises(pymysql.err.OperationalError) as denied:
            cur.execute("CREATE TABLE apireader_t (id INT)")
        assert denied.value.args[0] == 1142
    with env.catalog() as catalog:
        snapshot = catalog.snapshot()
        account = snapshot.find_account("apireader", "%")
        assert account is not None and account.owner_db == "apidb"
        assert snapshot.privileges(account.id, "apidb") == Priv.SELECT
        assert verify_password(account.password_hash, password)
    assert "apireader" in names(api.list())


def test_create_with_write(env: AdminProxy, api: Api) -> None:
    response = api.create({"username": "apiwriter", "read_only": False})
    assert response.status_code == 201
    password = response.json()["password"]
    env.login_within("apiwriter", password, "apidb", 1.0)
    with env.connect("apiwriter", password, "apidb") as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS apiwriter_t")
        cur.execute("CREATE TABLE apiwriter_t (id INT)")
        cur.execute("INSERT INTO apiwriter_t VALUES (7)")
        cur.execute("SELECT id FROM apiwriter_t")
        assert cur.fetchall() == ((7,),)
        cur.execute("DROP TABLE apiwriter_t")
    with env.catalog() as catalog:
        snapshot = catalog.snapshot()
        account = snapshot.find_account("apiwriter", "%")
        assert account is not None
        assert snapshot.privileges(account.id, "apidb") == ALL_PRIVILEGES


def test_create_with_host(env: AdminProxy, api: Api) -> None:
    response = api.create({"username": "apioffice", "host": "10.1.%"})
    assert response.status_code == 201
    assert response.json()["user"]["host"] == "10.1.%"
    rows = api.list().json()["users"]
    assert {"username": "apioffice", "host": "10.1.%", "read_only": True, "protected": False} in (
        rows
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"username": "ab"}, 400, POLICY.username_error),
        ({"username": "has_underscore"}, 400, POLICY.username_error),
        ({"username": "apidb_RO"}, 403, '"apidb_RO" is the name of a protected account'),
        ({"username": "apiother"}, 403, '"apiother" is the name of a protected account'),
        ({"username": "plainuser"}, 409, 'User "plainuser" already exists.'),
        # apiother owns the name "otheruser": at any host, as if it existed.
        (
            {"username": "otheruser", "host": "127.0.0.1"},
            409,
            'User "otheruser@127.0.0.1" already exists.',
        ),
        ({"username": "otheruser", "host": "1%"}, 409, 'User "otheruser@1%" already exists.'),
        (
            {"username": "badhost", "host": "localhost"},
            400,
            "Invalid host. Please use IP address instead.",
        ),
        ({"username": "pwgiven", "password": "Chosen#pw1"}, 400, "Unexpected field: password."),
        ({"username": ""}, 400, 'Give "username" as a non-empty string.'),
        ({}, 400, 'Give "username" as a non-empty string.'),
        ({"username": 5}, 400, 'Give "username" as a non-empty string.'),
        ({"username": "flagged", "read_only": "yes"}, 400, 'Give "read_only" as true or false.'),
    ],
)
def test_create_refusals(
    env: AdminProxy, api: Api, body: dict[str, Any], status: int, message: str
) -> None:
    with env.catalog() as catalog:
        before = catalog.snapshot().version
    response = api.create(body)
    assert response.status_code == status, response.text
    assert error_of(response).startswith(message)
    with env.catalog() as catalog:
        assert catalog.snapshot().version == before


def test_create_needs_json(api: Api) -> None:
    response = api.http.post(
        api.users_url("apidb"),
        content="username=formuser",
        headers={**api.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    response = api.http.post(
        api.users_url("apidb"),
        content="[1, 2]",
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    response = api.http.post(
        api.users_url("apidb"),
        content='{"username": "' + "x" * 20000 + '"}',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_create_csrf(env: AdminProxy, api: Api) -> None:
    missing = api.http.post(api.users_url("apidb"), json={"username": "nocsrf"})
    assert missing.status_code == 403
    assert "CSRF" in error_of(missing)
    wrong = api.create({"username": "nocsrf"}, csrf="not-the-token")
    assert wrong.status_code == 403
    with env.catalog() as catalog:
        assert catalog.snapshot().find_account("nocsrf", "%") is None


def test_create_requires_sign_in(env: AdminProxy, anonymous: Api) -> None:
    anonymous.session()
    response = anonymous.create({"username": "anonuser"})
    assert response.status_code == 401
    with env.catalog() as catalog:
        assert catalog.snapshot().find_account("anonuser", "%") is None


# --------------------------------------------------------------------------- users: reset


def test_reset_password(env: AdminProxy, api: Api) -> None:
    old = api.create({"username": "apireset", "read_only": False}).json()["password"]
    env.login_within("apireset", old, "apidb", 1.0)
    response = api.reset("apireset")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["user"] == {"username": "apireset", "host": "%"}
    new = data["password"]
    assert new != old and len(new) == 20
    env.login_within("apireset", new, "apidb", 1.0)
    assert not env.can_login("apireset", old, "apidb")
    with env.catalog() as catalog:
        snapshot = catalog.snapshot()
        account = snapshot.find_account("apireset", "%")
        assert account is not None
        assert snapshot.privileges(account.id, "apidb") == ALL_PRIVILEGES  # unchanged


@pytest.mark.parametrize(
    ("user", "body", "status", "message"),
    [
        (
            "plainuser",
            {"confirm": "plainuse"},
            400,
            'To confirm, type the user\'s name "plainuser"',
        ),
        ("plainuser", {}, 400, "To confirm"),
        ("plainuser", {"confirm": "plainuser", "password": "x"}, 400, "Unexpected field"),
        ("apidb", {"confirm": "apidb"}, 403, 'User "apidb" is protected'),
        ("apidb_RO", {"confirm": "apidb_RO"}, 403, 'User "apidb_RO" is protected'),
        ("ghost", {"confirm": "ghost"}, 404, 'No user "ghost" in database "apidb".'),
        (
            "plainuser",
            {"confirm": "plainuser", "host": "10.%"},
            404,
            'No user "plainuser@10.%" in database "apidb".',
        ),
    ],
)
def test_reset_refusals(
    env: AdminProxy, api: Api, user: str, body: dict[str, Any], status: int, message: str
) -> None:
    response = api.reset(user, body=body)
    assert response.status_code == status, response.text
    assert error_of(response).startswith(message)
    assert env.can_login("plainuser", "Plain#usr1", "apidb")
    assert env.can_login("apidb_RO", PASSWORDS["apidb_RO"], "apidb")


def test_reset_csrf(env: AdminProxy, api: Api) -> None:
    assert api.reset("plainuser", csrf="nope").status_code == 403
    response = api.http.post(
        api.users_url("apidb", "plainuser") + "/reset-password", json={"confirm": "plainuser"}
    )
    assert response.status_code == 403
    assert env.can_login("plainuser", "Plain#usr1", "apidb")


# --------------------------------------------------------------------------- users: delete


def test_delete(env: AdminProxy, api: Api) -> None:
    password = api.create({"username": "apidelete"}).json()["password"]
    env.login_within("apidelete", password, "apidb", 1.0)
    mirror = env.mirror_of("apidelete")
    assert env.mirror_grants(mirror) is not None
    wrong = api.delete("apidelete", body={"confirm": "APIDELETE"})
    assert wrong.status_code == 400
    response = api.delete("apidelete")
    assert response.status_code == 200
    assert response.json() == {"deleted": {"username": "apidelete", "host": "%"}}
    assert env.mirror_grants(mirror) is None  # its mirrored account went with it
    assert "apidelete" not in names(api.list())
    assert not env.can_login("apidelete", password, "apidb")
    again = api.delete("apidelete")
    assert again.status_code == 404


@pytest.mark.parametrize(
    ("user", "status", "message"),
    [
        ("apidb", 403, 'User "apidb" is protected and cannot be deleted.'),
        ("apidb_RO", 403, 'User "apidb_RO" is protected and cannot be deleted.'),
        ("ghost", 404, 'No user "ghost" in database "apidb".'),
    ],
)
def test_delete_refusals(env: AdminProxy, api: Api, user: str, status: int, message: str) -> None:
    response = api.delete(user)
    assert response.status_code == status
    assert error_of(response) == message
    assert env.can_login("apidb_RO", PASSWORDS["apidb_RO"], "apidb")


def test_delete_csrf(env: AdminProxy, api: Api) -> None:
    assert api.delete("plainuser", csrf="nope").status_code == 403
    response = api.http.request(
        "DELETE", api.users_url("apidb", "plainuser"), json={"confirm": "plainuser"}
    )
    assert response.status_code == 403
    assert "plainuser" in names(api.list())


def test_delete_requires_sign_in(anonymous: Api) -> None:
    anonymous.session()
    assert anonymous.delete("plainuser").status_code == 401
    assert anonymous.reset("plainuser").status_code == 401


# --------------------------------------------------------------------------- other databases


def test_cross_database_refused(env: AdminProxy, api: Api) -> None:
    own_only = 'You can only manage the users of your own database, not of "apiother".'
    listed = api.list("apiother")
    assert listed.status_code == 403 and error_of(listed) == own_only
    created = api.create({"username": "intruder"}, database="apiother")
    assert created.status_code == 403 and error_of(created) == own_only
    reset = api.reset("otheruser", database="apiother")
    assert reset.status_code == 403 and error_of(reset) == own_only
    deleted = api.delete("otheruser", database="apiother")
    assert deleted.status_code == 403 and error_of(deleted) == own_only
    # Through its own database's URL, another database's user does not exist.
    reset = api.reset("otheruser")
    assert reset.status_code == 404
    assert error_of(reset) == 'No user "otheruser" in database "apidb".'
    assert api.delete("otheruser").status_code == 404
    assert api.delete("apiother").status_code == 403  # and the other admin is protected
    with env.catalog() as catalog:
        snapshot = catalog.snapshot()
        assert snapshot.find_account("intruder", "%") is None
        other = snapshot.find_account("otheruser", "%")
        assert other is not None and verify_password(other.password_hash, "Other#usr1")


def test_unknown_database_does_not_leak(api: Api) -> None:
    response = api.list("nodb")
    assert response.status_code == 403  # checked before existence, as for SQL


def test_other_administrator_sees_only_its_database(env: AdminProxy) -> None:
    client = Api(env)
    try:
        assert client.login("apiother", PASSWORDS["apiother"]).status_code == 200
        assert set(names(client.list("apiother"))) >= {"apiother", "apiother_RO", "otheruser"}
        assert "plainuser" not in names(client.list("apiother"))
        assert client.list("apidb").status_code == 403
        assert client.delete("plainuser", database="apidb").status_code == 403
    finally:
        client.close()


# --------------------------------------------------------------------------- logs, CLI


def test_passwords_never_logged(
    env: AdminProxy, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="shardgate")
    caplog.set_level(logging.DEBUG, logger="uvicorn")
    client = Api(env)
    try:
        client.login("apidb", "Wrong#secret9")
        client.http.get("/login", params={"password": "Query#secret9"})
        assert client.login("apidb", PASSWORDS["apidb"]).status_code == 200
        first = client.create({"username": "apilogged"}).json()["password"]
        second = client.reset("apilogged").json()["password"]
        client.delete("apilogged")
    finally:
        client.close()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /api/login 401" in text and "POST /api/databases/apidb/users 201" in text
    assert "GET /login 200" in text  # the path, never its query string
    for secret in ("Wrong#secret9", "Query#secret9", PASSWORDS["apidb"], first, second):
        assert secret not in text


def test_cli_change_reaches_the_running_proxy(env: AdminProxy, api: Api) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "--config",
            str(env.config_path),
            "users",
            "create",
            "--database",
            "apidb",
            "--password-stdin",
            "clifirst",
        ],
        input="Cli#first1\n",
    )
    assert result.exit_code == 0, result.output
    assert env.login_within("clifirst", "Cli#first1", "apidb", 1.0) < 1.0
    assert "clifirst" in names(api.list())
    result = runner.invoke(
        main,
        ["--config", str(env.config_path), "users", "delete", "--database", "apidb", "clifirst"],
    )
    assert result.exit_code == 0
    deadline = time.monotonic() + 1.0
    while env.can_login("clifirst", "Cli#first1", "apidb"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


# --------------------------------------------------------------------------- config, TLS


def test_admin_config_defaults_and_checks(tmp_path: Path) -> None:
    config = parse_config({}, tmp_path)
    assert config.admin == AdminConfig()
    assert config.admin.enabled is False
    parsed = parse_config(
        {
            "admin": {
                "enabled": True,
                "host": "0.0.0.0",
                "port": 9443,
                "tls_cert": "c.pem",
                "tls_key": "k.pem",
                "session_secret_env": "SG_SESSION",
                "session_max_age": 600,
                "login_max_failures": 4,
                "login_window": 30,
            }
        },
        tmp_path,
    ).admin
    assert parsed.tls_cert == tmp_path / "c.pem" and parsed.login_window == 30.0
    for bad, message in [
        ({"enable": True}, "unknown key in [admin]: enable"),
        ({"enabled": "yes"}, "admin.enabled: expected bool"),
        ({"port": 70000}, "admin.port"),
        ({"tls_cert": "c.pem"}, "admin.tls_cert and admin.tls_key"),
        ({"login_max_failures": 0}, "admin.login_max_failures"),
        ({"session_max_age": True}, "admin.session_max_age: expected int"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config({"admin": bad}, tmp_path)


def test_session_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    derived = session_secret(AdminConfig(), b"catalog-secret")
    assert derived == session_secret(AdminConfig(), b"catalog-secret")
    assert derived != session_secret(AdminConfig(), b"another-secret")
    assert "catalog-secret" not in derived
    config = AdminConfig(session_secret_env="SG_TEST_SESSION")
    monkeypatch.delenv("SG_TEST_SESSION", raising=False)
    with pytest.raises(ConfigError, match="SG_TEST_SESSION"):
        session_secret(config, b"x")
    monkeypatch.setenv("SG_TEST_SESSION", "from-the-environment")
    assert session_secret(config, b"x") == "from-the-environment"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    return self_signed_cert(directory, "admin")


def test_https_and_secure_cookie(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    proxy = start_admin_proxy(shards, tmp_path, {}, {}, f'tls_cert = "{cert}"\ntls_key = "{key}"')
    try:
        assert proxy.base_url.startswith("https://")
        with httpx.Client(base_url=proxy.base_url, verify=False, timeout=30) as client:
            response = client.get("/api/session")
            assert response.status_code == 200
            assert "secure" in response.headers["set-cookie"].lower()
        with pytest.raises(httpx.HTTPError), httpx.Client(timeout=10) as plain:
            plain.get(proxy.base_url.replace("https://", "http://") + "/api/session")
    finally:
        proxy.runner.stop()


def test_admin_server_stops_with_the_proxy(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    proxy = start_admin_proxy(shards, tmp_path, {}, {})
    url = proxy.base_url
    assert httpx.get(url + "/api/session", timeout=10).status_code == 200
    proxy.runner.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/session", timeout=5)
