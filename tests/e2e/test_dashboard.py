"""The dashboard in a real headless Chromium (Debian's ``chromium`` package, driven by
Playwright): sign in, add users, read the generated password from the dialog and use it through
the proxy, reset it, delete the user, and the inline errors.

``UPDATE_SCREENSHOT=1`` also writes the page's screenshot to ``tests/e2e/dashboard.png`` (the
picture in the README); it is always written to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from auth.accounts import Actor
from proxy.dev.localshard import ShardEndpoint
from tests.e2e.test_admin_api import AdminProxy, start_admin_proxy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).with_name("dashboard.png")
PASSWORDS = {"dashdb": "Dash#admin1", "dashdb_RO": "Dash#read1"}

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing (Debian: apt-get install chromium); browser tests skipped",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def dash(
    shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AdminProxy]:
    base = tmp_path_factory.mktemp("dashboard")
    proxy = start_admin_proxy(shards, base, {"dashdb": "s0"}, PASSWORDS)
    try:
        yield proxy
    finally:
        proxy.runner.stop()


@pytest.fixture(scope="module")
def browser(dash: AdminProxy) -> Iterator[Browser]:
    # After ``dash``: Playwright's sync API keeps an event loop running in this thread, so
    # the proxy (which provisions databases with asyncio.run) must be set up first.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser, dash: AdminProxy) -> Iterator[Page]:
    dash.clear_rate_limits()
    context = browser.new_context(
        base_url=dash.base_url, viewport={"width": 1100, "height": 640}, device_scale_factor=1
    )
    context.set_default_timeout(15_000)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def sign_in(page: Page, user: str = "dashdb", password: str = PASSWORDS["dashdb"]) -> None:
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("button[type=submit]")


def add_user(page: Page, user: str, write: bool) -> str:
    """Add a user through the dialog; returns the password the dialog shows once."""
    page.click("#add-user")
    expect(page.locator("#add-dialog")).to_be_visible()
    page.fill("#new-username", user)
    if write:
        page.check("#new-write")
    page.click("#add-submit")
    dialog = page.locator("#password-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#password-title")).to_have_text(f'User "{user}" created')
    password = page.locator("#password-value").input_value()
    assert password
    page.click("#copy-password")
    expect(page.locator("#copy-status")).not_to_be_empty()
    page.click("#password-done")
    expect(dialog).to_be_hidden()
    # shown once: cleared by the dialog's "close" event, which fires after it is hidden
    expect(page.locator("#password-value")).to_have_value("")
    expect(page.locator(f'#users-body tr[data-username="{user}"]')).to_be_visible()
    return password


def open_menu(page: Page, user: str, item: str) -> None:
    page.click(f'#users-body tr[data-username="{user}"] summary')
    page.locator(
        f'#users-body tr[data-username="{user}"] .menu-items button', has_text=item
    ).click()
    expect(page.locator("#confirm-dialog")).to_be_visible()


def confirm_with(page: Page, user: str) -> None:
    submit = page.locator("#confirm-submit")
    expect(submit).to_be_disabled()
    page.fill("#confirm-input", user[:-1])
    expect(submit).to_be_disabled()
    page.fill("#confirm-input", user)
    expect(submit).to_be_enabled()
    submit.click()


def query_through_proxy(
    dash: AdminProxy, user: str, password: str, statements: list[str]
) -> list[tuple[object, ...]]:
    dash.login_within(user, password, "dashdb", 1.0)
    with dash.connect(user, password, "dashdb") as conn, conn.cursor() as cur:
        rows: list[tuple[object, ...]] = []
        for statement in statements:
            cur.execute(statement)
            rows.extend(cur.fetchall())
        return rows


def test_add_use_reset_delete(page: Page, dash: AdminProxy, tmp_path: Path) -> None:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    sign_in(page)
    expect(page.locator("h1")).to_have_text("User Management")
    expect(page.locator("#current-database")).to_have_text("dashdb")
    for builtin in ("dashdb", "dashdb_RO"):
        builtin_row = page.locator(f'#users-body tr[data-username="{builtin}"]')
        expect(builtin_row).to_contain_text("Protected")
        expect(builtin_row.locator("details.menu")).to_have_count(0)  # no delete / reset

    # Add a user with Write: the password from the dialog works through the proxy.
    password = add_user(page, "webwriter", write=True)
    writer = page.locator('#users-body tr[data-username="webwriter"]')
    expect(writer.locator("td").nth(2)).to_have_text("No")  # read-only: no
    rows = query_through_proxy(
        dash,
        "webwriter",
        password,
        [
            "DROP TABLE IF EXISTS web_t",
            "CREATE TABLE web_t (id INT)",
            "INSERT INTO web_t VALUES (42)",
            "SELECT id FROM web_t",
        ],
    )
    assert rows == [(42,)]

    # A read-only user (Write unchecked).
    reader_password = add_user(page, "webreader", write=False)
    expect(page.locator('#users-body tr[data-username="webreader"] td').nth(2)).to_have_text("Yes")
    assert query_through_proxy(dash, "webreader", reader_password, ["SELECT id FROM web_t"]) == [
        (42,)
    ]

    page.mouse.move(0, 0)
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)

    # Reset the password: the old one stops working, the new one works.
    open_menu(page, "webwriter", "Reset password")
    expect(page.locator("#confirm-title")).to_contain_text("webwriter")
    confirm_with(page, "webwriter")
    expect(page.locator("#password-dialog")).to_be_visible()
    expect(page.locator("#password-title")).to_have_text('New password for "webwriter"')
    new_password = page.locator("#password-value").input_value()
    assert new_password and new_password != password
    page.click("#password-done")
    assert query_through_proxy(dash, "webwriter", new_password, ["SELECT id FROM web_t"]) == [(42,)]
    assert not dash.can_login("webwriter", password, "dashdb")

    # Delete the user.
    open_menu(page, "webwriter", "Delete user")
    expect(page.locator("#confirm-title")).to_contain_text("webwriter")
    confirm_with(page, "webwriter")
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page.locator('#users-body tr[data-username="webwriter"]')).to_have_count(0)
    deadline = time.monotonic() + 1.0
    while dash.can_login("webwriter", new_password, "dashdb"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with dash.connect("webreader", reader_password, "dashdb") as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM web_t")

    # Sign out.
    page.click("#sign-out")
    expect(page).to_have_url(dash.base_url + "/login")
    page.goto("/")
    expect(page).to_have_url(dash.base_url + "/login")

    # No password ever travelled in a URL.
    for secret in (PASSWORDS["dashdb"], password, new_password, reader_password):
        assert not any(secret in url for url in urls)
        assert not any(pymysql.converters.escape_string(secret) in url for url in urls)


def test_errors_are_shown_inline(page: Page, dash: AdminProxy) -> None:
    sign_in(page)
    expect(page.locator("#users-body tr[data-username='dashdb']")).to_be_visible()
    page.click("#add-user")
    page.fill("#new-username", "ab")
    page.click("#add-submit")
    error = page.locator("#add-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Invalid username. Username requirements")
    expect(error).not_to_contain_text("ERR-CODE")
    page.fill("#new-username", "dashdb_RO")
    page.click("#add-submit")
    expect(error).to_have_text(
        '"dashdb_RO" is the name of a protected account; choose another name.'
    )
    page.click("#add-dialog [data-close]")
    expect(page.locator("#add-dialog")).to_be_hidden()

    # A user deleted elsewhere (by the CLI / SQL) after the page was loaded.
    dash.operator().create_user_for_database(
        Actor.operator(), "dashdb", "gonesoon", "%", "Gone#soon1", True
    )
    page.reload()
    expect(page.locator('#users-body tr[data-username="gonesoon"]')).to_be_visible()
    dash.operator().delete_user(Actor.operator(), "dashdb", "gonesoon")
    open_menu(page, "gonesoon", "Reset password")
    confirm_with(page, "gonesoon")
    confirm_error = page.locator("#confirm-error")
    expect(confirm_error).to_have_text('No user "gonesoon" in database "dashdb".')
    expect(page.locator("#confirm-dialog")).to_be_visible()


def test_sign_in_errors(page: Page) -> None:
    sign_in(page, "dashdb", "Wrong#pass1")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    expect(page.locator("#password")).to_have_value("")
    sign_in(page, "dashdb_RO", PASSWORDS["dashdb_RO"])
    expect(page.locator("#login-error")).to_have_text(
        "Only a database's administrator account can sign in to the dashboard."
    )
    assert "password" not in page.url.lower()
    sign_in(page)
    expect(page.locator("h1")).to_have_text("User Management")
