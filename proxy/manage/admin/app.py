"""The dashboard and its JSON API: a Starlette application over ``UserAdmin``.

An administrator signs in with its database's built-in administrator account (``<db>@'%'``)
and password, checked against the catalog with ``verify_password``; it then manages the users
of that database only: the ``AccountManager`` refuses any other database (TDDL-5106), exactly as
for SQL.

Security:

* The session is a signed cookie (Starlette's ``SessionMiddleware``: ``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` under TLS). It holds the account id, its database and a keyed
  fingerprint of the account's password hash, so a password reset or a dropped database ends
  the sessions opened before it. It never holds a password.
* A CSRF token per session, required on every state-changing request: header ``X-CSRF-Token``
  for the JSON API, hidden field ``csrf_token`` for forms. JSON endpoints also require
  ``Content-Type: application/json``.
* Failed sign-ins are rate-limited per client address and per account name (HTTP 429).
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
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.accounts import AccountManager, Actor
from auth.catalog import Catalog
from auth.model import Account
from auth.passwords import hash_password, verify_password
from proxy.backend.mirror import MirrorManager
from proxy.manage.admin.ratelimit import LoginLimiter
from proxy.manage.admin.users import UserAdmin, UserAdminError
from proxy.ops.config import AdminConfig

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SESSION_COOKIE", "AdminApp", "create_app"]

log = logging.getLogger("shardgate.admin")

SESSION_COOKIE = "shardgate_admin"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Largest request body accepted (JSON or form).
MAX_BODY = 16 * 1024
# Longest user name / password / host accepted before any work is done.
MAX_FIELD = 256

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


Verdict = Literal["ok", "bad", "not_admin"]


class AdminApp:
    """The application's state and handlers (one per admin server)."""

    def __init__(
        self,
        accounts: AccountManager,
        catalog: Catalog,
        mirrors: MirrorManager,
        config: AdminConfig,
        session_secret: str,
    ) -> None:
        self.users = UserAdmin(accounts)
        self.catalog = catalog
        self.mirrors = mirrors
        self.config = config
        self.limiter = LoginLimiter(config.login_max_failures, config.login_window)
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
            exception_handlers={ApiError: self._api_error},  # type: ignore[dict-item]
        )

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
        session that no longer matches the catalog is ended)."""
        uid = request.session.get("uid")
        if not isinstance(uid, int):
            return None
        await run_in_threadpool(self.catalog.refresh)
        account = self.catalog.snapshot().account(uid)
        fingerprint = request.session.get("fp")
        if (
            account is None
            or account.builtin != "admin"
            or account.owner_db is None
            or account.user != request.session.get("user")
            or not isinstance(fingerprint, str)
            or not hmac.compare_digest(fingerprint, self._fingerprint(account))
        ):
            request.session.clear()
            return None
        return account

    async def _require_admin(self, request: Request) -> Account:
        account = await self._signed_in(request)
        if account is None:
            raise ApiError(401, "Please sign in.")
        return account

    def _check_login(self, username: str, password: str, ip: str) -> tuple[Verdict, Account | None]:
        """Blocking: the account a login from ``ip`` binds to, and whether it may sign in."""
        self.catalog.refresh()
        account = self.catalog.snapshot().login_account(username, ip)
        if account is None or not account.has_password:
            verify_password(_dummy_hash(), password)
            return "bad", None
        if not verify_password(account.password_hash, password):
            return "bad", None
        if account.builtin != "admin" or account.owner_db is None:
            return "not_admin", account
        return "ok", account

    async def _login(self, request: Request, username: object, password: object) -> Account:
        ip = _client_ip(request)
        if not isinstance(username, str) or not isinstance(password, str):
            raise ApiError(400, "Give a user name and a password.")
        if not username or not password:
            raise ApiError(401, "Wrong user name or password.")
        if len(username) > MAX_FIELD or len(password) > MAX_FIELD:
            raise ApiError(400, "The user name or password is too long.")
        wait = self.limiter.retry_after(ip, username)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            log.warning("dashboard sign-in refused (rate limit) from %s", ip)
            raise ApiError(
                429,
                f"Too many failed sign-in attempts; try again in {seconds} seconds.",
                {"Retry-After": str(seconds)},
            )
        verdict, account = await run_in_threadpool(self._check_login, username, password, ip)
        if verdict == "bad" or account is None:
            self.limiter.failed(ip, username)
            log.warning("dashboard sign-in failed from %s", ip)
            raise ApiError(401, "Wrong user name or password.")
        if verdict == "not_admin":
            log.warning(
                "dashboard sign-in refused for %s from %s: not an administrator", account.name, ip
            )
            raise ApiError(
                403, "Only a database's administrator account can sign in to the dashboard."
            )
        self.limiter.succeeded(username)
        assert account.owner_db is not None
        database = self.catalog.snapshot().database(account.owner_db)
        session = request.session
        session.clear()
        session.update(
            uid=account.id,
            user=account.user,
            host=account.host,
            db=database.name if database is not None else account.owner_db,
            fp=self._fingerprint(account),
            csrf=secrets.token_urlsafe(32),
            at=int(time.time()),
        )
        log.info("dashboard sign-in: %s from %s", account.name, ip)
        return account

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.message}, exc.status, headers=exc.headers)

    @staticmethod
    async def _body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdecimal() or int(length) > MAX_BODY):
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
        except ValueError:
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
        if not isinstance(value, str) or (default is None and not value):
            raise ApiError(400, f'Give "{key}" as a non-empty string.')
        if len(value) > MAX_FIELD:
            raise ApiError(400, f'"{key}" is too long.')
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
        if data.get("confirm") != user:
            raise ApiError(400, f'To confirm, type the user\'s name "{user}" exactly.')

    # ------------------------------------------------------------------ pages

    async def page_dashboard(self, request: Request) -> Response:
        account = await self._signed_in(request)
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
        if await self._signed_in(request) is not None:
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
        request.session.clear()
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
        request.session.clear()
        return JSONResponse({"authenticated": False})

    # ------------------------------------------------------------------ API: users

    async def _call(self, function: Any, *args: Any) -> Any:
        try:
            return await run_in_threadpool(function, *args)
        except UserAdminError as error:
            raise ApiError(error.status, error.message) from None

    async def api_list(self, request: Request) -> Response:
        account = await self._require_admin(request)
        database = request.path_params["db"]
        actor = Actor(account, _client_ip(request))
        rows = await self._call(self.users.list_users, actor, database)
        return JSONResponse({"database": database, "users": [row.as_json() for row in rows]})

    async def api_create(self, request: Request) -> Response:
        account = await self._state_change(request)
        database = request.path_params["db"]
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
        database, user = request.path_params["db"], request.path_params["user"]
        data = await self._json(request, {"confirm", "host"})
        self._confirm(data, user)
        host = self._text(data, "host", "%")
        actor = Actor(account, _client_ip(request))
        password = await self._call(self.users.update_password, actor, database, user, host, None)
        return JSONResponse({"user": {"username": user, "host": host}, "password": password})

    async def api_delete(self, request: Request) -> Response:
        account = await self._state_change(request)
        database, user = request.path_params["db"], request.path_params["user"]
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
) -> AdminApp:
    return AdminApp(accounts, catalog, mirrors, config, session_secret)
