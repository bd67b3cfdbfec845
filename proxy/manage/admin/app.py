"""The dashboard and its JSON API: a Starlette application over ``UserAdmin``.

An administrator signs in with its database's built-in administrator account (``<db>@'%'``)
and password, checked against the catalog with ``verify_password``; it then manages the users
of that database only: the ``AccountManager`` refuses any other database (TDDL-5106), exactly as
for SQL.

Security:

* The session is a signed cookie (Starlette's ``SessionMiddleware``: ``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` under TLS). It holds a random session id, the account id, its
  database, when it was signed in and a keyed fingerprint of the account's password hash: a
  password change (on any node: the hash is in the catalog) or a dropped database ends the
  sessions opened before it, and a sign-in lasts ``session_max_age`` at most. It never holds a
  password.
* Signing out (and signing in again over a session) ends the session server-side: the SHA-256
  of its id goes to the catalog (``Catalog.revoke_session``, through the login bookkeeping
  queue), which every node checks, so a replayed cookie no longer works anywhere.
* A CSRF token per session, required on every state-changing request: header ``X-CSRF-Token``
  for the JSON API, hidden field ``csrf_token`` for forms. JSON endpoints also require
  ``Content-Type: application/json``.
* A sign-in is a login like one on the MySQL port: a wrong password (from an address the
  account's host pattern matches) counts towards the account's lockout (``[server]
  login_max_failures`` / ``login_lock_seconds``), a right one resets the count, and a locked
  account is refused whatever the password, with MySQL 8's 3955 sentence (HTTP 403) — told, as
  on the MySQL port, only to a client that named the account from a matching address. The
  counting goes through ``auth.bookkeeping.LoginBookkeeping``, so a busy or unreachable catalog
  delays it but neither loses it nor holds the sign-in. Each attempt is one line on the audit
  logger (``audit_login``), as for the MySQL port. Failed sign-ins are also rate-limited per
  client address and per account name (HTTP 429).
* Malformed input of any shape (wrong types, deep nesting, non-UTF-8, oversized bodies, unknown
  routes or methods) gets a 4xx with ``{"error": ...}``; an unavailable catalog a 503.
* Redirects are relative (``Location: /login``): the Host header is never echoed (no trailing
  slash redirects either).
* Passwords travel in POST bodies only, and are never logged: the access log shows method,
  path (without query string) and status; sign-in logs show the account name only on success.
* Responses carry a strict Content-Security-Policy (no inline script), ``no-store`` caching,
  ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``.

API (JSON; errors are ``{"error": "<one sentence>"}`` with a 4xx status):

* ``GET /api/session`` -> ``{"authenticated", "csrf_token", "database", "user"}``
* ``POST /api/login`` ``{"username", "password"}``; ``POST /api/logout``
* ``GET /api/databases/{db}/users`` -> ``{"database", "users": [{"username", "host",
  "read_only", "protected"}]}``
* ``POST /api/databases/{db}/users`` ``{"username", "read_only" (default true), "host"
  (default "%")}`` -> 201 ``{"user", "password"}`` (generated, shown once)
* ``POST /api/databases/{db}/users/{user}/reset-password`` ``{"confirm": user, "host"}`` ->
  ``{"user", "password"}``
* ``DELETE /api/databases/{db}/users/{user}`` ``{"confirm": user, "host"}`` -> ``{"deleted"}``
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.accounts import AccountManager, Actor
from auth.bookkeeping import LoginBookkeeping
from auth.catalog import Catalog, CatalogError, CatalogUnavailableError
from auth.errors import account_blocked
from auth.model import Account
from auth.passwords import hash_password, verify_password
from proxy.backend.mirror import MirrorManager
from proxy.manage.admin.ratelimit import LoginLimiter
from proxy.manage.admin.users import UserAdmin, UserAdminError
from proxy.ops.config import AdminConfig, ServerConfig
from proxy.ops.logs import audit_login

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SESSION_COOKIE", "AdminApp", "create_app"]

log = logging.getLogger("shardgate.admin")

SESSION_COOKIE = "shardgate_admin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Largest request body accepted (JSON or form).
MAX_BODY = 16 * 1024
# Longest user name / password / host (and database or user name in a URL) accepted before
# any work is done.
MAX_FIELD = 256
# Ended sessions this node remembers itself (besides the catalog), pruned as they expire.
MAX_LOCAL_REVOKED = 100_000
# A revoked session is remembered this much longer than it could be valid (clock skew).
REVOKE_SLACK = 60
UNAVAILABLE = "The account catalog is unavailable; please try again shortly."

_HERE = Path(__file__).resolve().parent
_SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)


class ApiError(Exception):
    """A refusal: HTTP ``status`` and one sentence for a person."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


@cache
def _dummy_hash() -> str:
    """A stored hash to verify against when the account is unknown (same cost as a real one)."""
    return hash_password(secrets.token_urlsafe(16))


def _client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


Verdict = Literal["ok", "bad", "locked", "not_admin"]


def _session_hash(session_id: str) -> str:
    """What the catalog keeps of a session id (a bearer credential): its SHA-256."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _utf8(value: str) -> bool:
    """Whether ``value`` can be encoded (JSON can carry lone surrogates, which cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class AdminApp:
    """The application's state and handlers (one per admin server)."""

    def __init__(
        self,
        accounts: AccountManager,
        catalog: Catalog,
        mirrors: MirrorManager,
        config: AdminConfig,
        session_secret: str,
        server_config: Callable[[], ServerConfig],
        bookkeeping: LoginBookkeeping,
    ) -> None:
        """``server_config``: the proxy's ``[server]`` settings as they are now (the lockout's
        ``login_max_failures`` / ``login_lock_seconds`` follow a reload); ``bookkeeping``: the
        queue the MySQL port's logins use too."""
        self.users = UserAdmin(accounts)
        self.catalog = catalog
        self.mirrors = mirrors
        self.config = config
        self.server_config = server_config
        self.bookkeeping = bookkeeping
        self.limiter = LoginLimiter(config.login_max_failures, config.login_window)
        # Session hashes this node ended -> until when (the catalog has them too, or soon).
        self._revoked: dict[str, float] = {}
        self._fingerprint_key = hashlib.sha256(
            b"shardgate admin fingerprint\0" + session_secret.encode()
        ).digest()
        self.templates = Jinja2Templates(directory=_HERE / "templates")
        self.app = Starlette(
            routes=[
                Route("/", self.page_dashboard, methods=["GET"]),
                Route("/login", self.page_login, methods=["GET"]),
                Route("/login", self.form_login, methods=["POST"]),
                Route("/logout", self.form_logout, methods=["POST"]),
                Route("/api/session", self.api_session, methods=["GET"]),
                Route("/api/login", self.api_login, methods=["POST"]),
                Route("/api/logout", self.api_logout, methods=["POST"]),
                Route("/api/databases/{db}/users", self.api_list, methods=["GET"]),
                Route("/api/databases/{db}/users", self.api_create, methods=["POST"]),
                Route(
                    "/api/databases/{db}/users/{user}/reset-password",
                    self.api_reset,
                    methods=["POST"],
                ),
                Route("/api/databases/{db}/users/{user}", self.api_delete, methods=["DELETE"]),
                Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
            ],
            middleware=[
                Middleware(_SecurityHeaders),
                Middleware(
                    SessionMiddleware,
                    secret_key=session_secret,
                    session_cookie=SESSION_COOKIE,
                    max_age=config.session_max_age,
                    same_site="strict",
                    https_only=config.tls_cert is not None,
                ),
            ],
            exception_handlers={
                ApiError: self._api_error,  # type: ignore[dict-item]
                HTTPException: self._http_error,  # type: ignore[dict-item]
                CatalogError: self._catalog_error,  # type: ignore[dict-item]
                Exception: self._internal_error,
            },
        )
        # A trailing-slash redirect would be an absolute URL built from the Host header.
        self.app.router.redirect_slashes = False

    # ------------------------------------------------------------------ sessions

    def _fingerprint(self, account: Account) -> str:
        digest = hmac.new(self._fingerprint_key, account.password_hash.encode(), "sha256")
        return digest.hexdigest()[:32]

    @staticmethod
    def _csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not isinstance(token, str) or not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    @staticmethod
    def _check_csrf(request: Request, provided: object) -> None:
        expected = request.session.get("csrf")
        if (
            not isinstance(expected, str)
            or not expected
            or not isinstance(provided, str)
            or not hmac.compare_digest(provided.encode(), expected.encode())
        ):
            raise ApiError(403, "Missing or invalid CSRF token; reload the page and try again.")

    async def _signed_in(self, request: Request) -> Account | None:
        """The signed-in administrator's account as the catalog has it now, else None (and a
        session that no longer matches the catalog, was ended or is too old is cleared).
        ApiError 503 when the catalog cannot be read."""
        session = request.session
        uid, sid, at = session.get("uid"), session.get("sid"), session.get("at")
        if not isinstance(uid, int) or not isinstance(sid, str) or not isinstance(at, int):
            if session.get("uid") is not None:
                session.clear()
            return None
        if time.time() - at >= self.config.session_max_age or self._ended_here(sid):
            session.clear()
            return None
        try:
            account, revoked = await run_in_threadpool(self._current, uid, _session_hash(sid))
        except CatalogUnavailableError:
            raise ApiError(503, UNAVAILABLE) from None
        fingerprint = session.get("fp")
        if (
            revoked
            or account is None
            or account.administered_database is None
            or account.user != session.get("user")
            or not isinstance(fingerprint, str)
            or not hmac.compare_digest(fingerprint, self._fingerprint(account))
        ):
            session.clear()
            return None
        return account

    def _current(self, uid: int, session_hash: str) -> tuple[Account | None, bool]:
        """Blocking: the account as the catalog has it now, and whether the session ended."""
        self.catalog.refresh()
        return self.catalog.snapshot().account(uid), self.catalog.session_revoked(session_hash)

    def _ended_here(self, sid: str) -> bool:
        until = self._revoked.get(_session_hash(sid))
        return until is not None and time.time() < until

    async def _end_session(self, request: Request) -> None:
        """End the request's session, here at once and on every node through the catalog."""
        session = request.session
        sid, at = session.get("sid"), session.get("at")
        session.clear()
        if not isinstance(sid, str) or not isinstance(at, int):
            return
        until = at + self.config.session_max_age + REVOKE_SLACK
        now = time.time()
        revoked = self._revoked
        if len(revoked) >= MAX_LOCAL_REVOKED:
            for key in [key for key, expiry in revoked.items() if expiry <= now]:
                del revoked[key]
            while len(revoked) >= MAX_LOCAL_REVOKED:  # the catalog still has the oldest
                del revoked[next(iter(revoked))]
        hashed = _session_hash(sid)
        revoked[hashed] = until
        await run_in_threadpool(self.bookkeeping.revoke_session, hashed, until)

    async def _require_admin(self, request: Request) -> Account:
        account = await self._signed_in(request)
        if account is None:
            raise ApiError(401, "Please sign in.")
        return account

    def _check_login(
        self, username: str, password: str, ip: str
    ) -> tuple[Verdict, Account | None, float | None]:
        """Blocking: the account a login from ``ip`` binds to, whether it may sign in, and (when
        locked) until when. The same rules as a MySQL-port login (proxy/session): a locked
        account is refused before its password is looked at; a wrong password counts towards
        the lock; a right one resets the count. Works on the last snapshot when the catalog
        cannot be read (as the MySQL port does), and the counting is queued when it cannot be
        written."""
        try:
            self.catalog.refresh()
        except CatalogUnavailableError:
            pass
        account = self.catalog.snapshot().login_account(username, ip)
        if account is None or not account.has_password:
            verify_password(_dummy_hash(), password)
            return "bad", None, None
        server = self.server_config()
        if account.locked_at(time.time()):
            return "locked", account, account.locked_until
        if not self._password_matches(account, password):
            lock = self.bookkeeping.record_login_failure(
                account.id, server.login_max_failures, server.login_lock_seconds, ip
            )
            if lock is not None:
                return "locked", account, lock.locked_until
            return "bad", account, None
        if account.failed_logins or account.locked_until is not None:
            # Only then: a normal sign-in writes nothing to the catalog.
            lock = self.bookkeeping.login_succeeded(account.id, server.login_lock_seconds)
            if lock is not None:
                return "locked", account, lock.locked_until
        if account.administered_database is None:
            return "not_admin", account, None
        return "ok", account, None

    @staticmethod
    def _password_matches(account: Account, password: str) -> bool:
        """The password, or the retained one (dual passwords), as on the MySQL port."""
        if verify_password(account.password_hash, password):
            return True
        retained = account.retained_password_hash
        return retained is not None and verify_password(retained, password)

    def _blocked(self, username: str, ip: str, account: Account, until: float) -> ApiError:
        server = self.server_config()
        remaining = until - time.time()
        error = account_blocked(
            username,
            ip,
            server.login_lock_seconds,
            remaining,
            server.login_max_failures or account.failed_logins,
        )
        return ApiError(403, error.message, {"Retry-After": str(max(1, math.ceil(remaining)))})

    async def _login(self, request: Request, username: object, password: object) -> Account:
        ip = _client_ip(request)
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "Give a user name and a password.")
        if not _utf8(username) or not _utf8(password):
            raise ApiError(400, "The user name or password is not valid text.")
        if not username or not password:
            raise ApiError(401, "Wrong user name or password.")
        if len(username) > MAX_FIELD or len(password) > MAX_FIELD:
            raise ApiError(400, "The user name or password is too long.")
        wait = self.limiter.retry_after(ip, username)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            log.warning("dashboard sign-in refused (rate limit) from %s", ip)
            audit_login(False, repr(username), ip, "dashboard: rate limited")
            raise ApiError(
                429,
                f"Too many failed sign-in attempts; try again in {seconds} seconds.",
                {"Retry-After": str(seconds)},
            )
        verdict, account, locked_until = await run_in_threadpool(
            self._check_login, username, password, ip
        )
        if verdict == "locked" and account is not None and locked_until is not None:
            self.limiter.failed(ip, username)
            log.warning("dashboard sign-in refused for %s from %s: locked", account.name, ip)
            audit_login(False, repr(username), ip, "dashboard: account locked after failed logins")
            raise self._blocked(username, ip, account, locked_until)
        if verdict in ("bad", "locked") or account is None:
            self.limiter.failed(ip, username)
            log.warning("dashboard sign-in failed from %s", ip)
            audit_login(False, repr(username), ip, "dashboard: access denied")
            raise ApiError(401, "Wrong user name or password.")
        if verdict == "not_admin":
            log.warning(
                "dashboard sign-in refused for %s from %s: not an administrator", account.name, ip
            )
            audit_login(False, repr(username), ip, "dashboard: not an administrator")
            raise ApiError(
                403, "Only a database's administrator account can sign in to the dashboard."
            )
        self.limiter.succeeded(username)
        assert account.owner_db is not None
        database = self.catalog.snapshot().database(account.owner_db)
        if isinstance(request.session.get("sid"), str):
            await self._end_session(request)  # a new sign-in never reuses a session
        session = request.session
        session.clear()
        session.update(
            sid=secrets.token_urlsafe(32),
            uid=account.id,
            user=account.user,
            host=account.host,
            db=database.name if database is not None else account.owner_db,
            fp=self._fingerprint(account),
            csrf=secrets.token_urlsafe(32),
            at=int(time.time()),
        )
        log.info("dashboard sign-in: %s from %s", account.name, ip)
        audit_login(True, f"{account.user}@'{account.host}' (dashboard)", ip)
        return account

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @staticmethod
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        """Starlette's own refusals (unknown route 404, wrong method 405), as JSON."""
        messages = {404: "Not found.", 405: "Method not allowed."}
        message = messages.get(exc.status_code, "The request was refused.")
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)

    @staticmethod
    async def _catalog_error(request: Request, exc: CatalogError) -> Response:
        log.warning("dashboard request failed: %s", exc.message)
        return JSONResponse({"error": UNAVAILABLE}, 503)

    @staticmethod
    async def _internal_error(request: Request, exc: Exception) -> Response:
        """A bug: one sentence for the client (never a traceback); the server logs it."""
        return JSONResponse({"error": "Internal error; it has been logged."}, 500)

    @staticmethod
    async def _body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdecimal():
                raise ApiError(400, "The Content-Length header is not a number.")
            if int(length) > MAX_BODY:
                raise ApiError(413, "The request is too large.")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise ApiError(413, "The request is too large.")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json(self, request: Request, allowed: set[str]) -> dict[str, Any]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise ApiError(415, "Send a JSON body (Content-Type: application/json).")
        body = await self._body(request)
        try:
            data = json.loads(body) if body else {}
        except (ValueError, RecursionError):  # RecursionError: nested too deeply
            raise ApiError(400, "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ApiError(400, f"Unexpected field: {', '.join(unknown)}.")
        return data

    @staticmethod
    def _text(data: dict[str, Any], key: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or (default is None and not value) or not _utf8(value):
            raise ApiError(400, f'Give "{key}" as a non-empty string.')
        if len(value) > MAX_FIELD:
            raise ApiError(400, f'"{key}" is too long.')
        return value

    @staticmethod
    def _path_param(request: Request, key: str) -> str:
        value = str(request.path_params[key])
        if not value or len(value) > MAX_FIELD or not _utf8(value):
            raise ApiError(400, f"The {key} in the address is not valid.")
        return value

    @staticmethod
    def _flag(data: dict[str, Any], key: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise ApiError(400, f'Give "{key}" as true or false.')
        return value

    async def _state_change(self, request: Request) -> Account:
        """A signed-in administrator with a valid CSRF header."""
        account = await self._require_admin(request)
        self._check_csrf(request, request.headers.get(CSRF_HEADER))
        return account

    @staticmethod
    def _confirm(data: dict[str, Any], user: str) -> None:
        confirm = data.get("confirm")
        if not isinstance(confirm, str) or confirm != user:
            raise ApiError(400, f'To confirm, type the user\'s name "{user}" exactly.')

    # ------------------------------------------------------------------ pages

    async def page_dashboard(self, request: Request) -> Response:
        try:
            account = await self._signed_in(request)
        except ApiError as error:
            return self._login_page(request, error.message, error.status)
        if account is None:
            return RedirectResponse("/login", 303)
        return self.templates.TemplateResponse(
            request,
            "dashboard.html",
            {
                "database": request.session.get("db", ""),
                "user": account.user,
                "csrf_token": self._csrf_token(request),
            },
        )

    def _login_page(
        self, request: Request, error: str | None = None, status: int = 200, username: str = ""
    ) -> Response:
        response = self.templates.TemplateResponse(
            request,
            "login.html",
            {"csrf_token": self._csrf_token(request), "error": error, "username": username},
            status_code=status,
        )
        return response

    async def page_login(self, request: Request) -> Response:
        try:
            signed_in = await self._signed_in(request) is not None
        except ApiError as error:
            return self._login_page(request, error.message, error.status)
        if signed_in:
            return RedirectResponse("/", 303)
        return self._login_page(request)

    async def _form(self, request: Request) -> dict[str, str]:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            raise ApiError(415, "Send the form.")
        body = await self._body(request)
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "The form could not be read.") from None
        return dict(pairs)

    async def form_login(self, request: Request) -> Response:
        username = ""
        try:
            form = await self._form(request)
            username = form.get("username", "")[:MAX_FIELD]
            try:
                self._check_csrf(request, form.get(CSRF_FIELD))
            except ApiError:
                raise ApiError(403, "The sign-in form expired; please sign in again.") from None
            await self._login(request, username, form.get("password", ""))
        except ApiError as error:
            response = self._login_page(request, error.message, error.status, username)
            if error.headers:
                response.headers.update(error.headers)
            return response
        return RedirectResponse("/", 303)

    async def form_logout(self, request: Request) -> Response:
        form = await self._form(request)
        self._check_csrf(request, form.get(CSRF_FIELD))
        await self._end_session(request)
        return RedirectResponse("/login", 303)

    # ------------------------------------------------------------------ API: session

    async def api_session(self, request: Request) -> Response:
        account = await self._signed_in(request)
        return JSONResponse(
            {
                "authenticated": account is not None,
                "csrf_token": self._csrf_token(request),
                "database": request.session.get("db") if account is not None else None,
                "user": account.user if account is not None else None,
            }
        )

    async def api_login(self, request: Request) -> Response:
        self._check_csrf(request, request.headers.get(CSRF_HEADER))
        data = await self._json(request, {"username", "password"})
        account = await self._login(request, data.get("username"), data.get("password"))
        return JSONResponse(
            {
                "authenticated": True,
                "csrf_token": request.session["csrf"],
                "database": request.session["db"],
                "user": account.user,
            }
        )

    async def api_logout(self, request: Request) -> Response:
        self._check_csrf(request, request.headers.get(CSRF_HEADER))
        await self._end_session(request)
        return JSONResponse({"authenticated": False})

    # ------------------------------------------------------------------ API: users

    async def _call(self, function: Any, *args: Any) -> Any:
        try:
            return await run_in_threadpool(function, *args)
        except UserAdminError as error:
            if error.detail:
                log.warning("dashboard request refused: %s", error.detail)
            raise ApiError(error.status, error.message) from None

    async def api_list(self, request: Request) -> Response:
        account = await self._require_admin(request)
        database = self._path_param(request, "db")
        actor = Actor(account, _client_ip(request))
        rows = await self._call(self.users.list_users, actor, database)
        return JSONResponse({"database": database, "users": [row.as_json() for row in rows]})

    async def api_create(self, request: Request) -> Response:
        account = await self._state_change(request)
        database = self._path_param(request, "db")
        data = await self._json(request, {"username", "read_only", "host"})
        username = self._text(data, "username")
        host = self._text(data, "host", "%")
        read_only = self._flag(data, "read_only", True)
        actor = Actor(account, _client_ip(request))
        before = self.catalog.snapshot()
        row, password = await self._call(
            self.users.create_user, actor, database, username, host, None, read_only
        )
        await self.mirrors.catalog_changed(before)
        return JSONResponse({"user": row.as_json(), "password": password}, 201)

    async def api_reset(self, request: Request) -> Response:
        account = await self._state_change(request)
        database, user = self._path_param(request, "db"), self._path_param(request, "user")
        data = await self._json(request, {"confirm", "host"})
        self._confirm(data, user)
        host = self._text(data, "host", "%")
        actor = Actor(account, _client_ip(request))
        password = await self._call(self.users.update_password, actor, database, user, host, None)
        return JSONResponse({"user": {"username": user, "host": host}, "password": password})

    async def api_delete(self, request: Request) -> Response:
        account = await self._state_change(request)
        database, user = self._path_param(request, "db"), self._path_param(request, "user")
        data = await self._json(request, {"confirm", "host"})
        self._confirm(data, user)
        host = self._text(data, "host", "%")
        actor = Actor(account, _client_ip(request))
        before = self.catalog.snapshot()
        await self._call(self.users.delete_user, actor, database, user, host)
        await self.mirrors.catalog_changed(before)
        return JSONResponse({"deleted": {"username": user, "host": host}})


class _SecurityHeaders:
    """Adds the security headers to every response and writes the access log (method, path
    without query string, status: never a body)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            client = scope.get("client")
            log.info(
                "%s %s %s %d",
                client[0] if client else "-",
                scope.get("method", ""),
                scope.get("path", ""),
                status,
            )


def create_app(
    accounts: AccountManager,
    catalog: Catalog,
    mirrors: MirrorManager,
    config: AdminConfig,
    session_secret: str,
    server_config: Callable[[], ServerConfig],
    bookkeeping: LoginBookkeeping,
) -> AdminApp:
    return AdminApp(accounts, catalog, mirrors, config, session_secret, server_config, bookkeeping)
