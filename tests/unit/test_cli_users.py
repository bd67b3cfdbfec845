"""The ``shardgate users ...`` and ``shardgate database reset-password`` commands, against a
real SQLite catalog (no shard needed), plus ``database create`` on a real shard and one real
subprocess run of the console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from auth.catalog import Catalog
from auth.model import Account
from auth.passwords import verify_password
from auth.policy import profile_by_name
from auth.privileges import ALL_PRIVILEGES, Priv
from proxy.dev.localshard import ShardEndpoint
from proxy.manage.cli import main

PASSWORDS = {
    "easydb": "Admin#pass1",
    "easydb_RO": "ReadOnly#1",
    "otherdb": "Other#pass1",
    "otherdb_RO": "OtherRO#1",
}
MANAGED_ADMIN = "Managed-admin-password-0001"
MANAGED_RO = "Managed-readonly-password-01"

Run = Callable[..., Result]


def write_config(directory: Path, policy: str = "polardbx", shards: str = "") -> Path:
    path = directory / "shardgate.toml"
    path.write_text(
        f'[server]\npolicy = "{policy}"\n[catalog]\nurl = "sqlite:///catalog.db"\n{shards}'
    )
    return path


def open_catalog(directory: Path) -> Catalog:
    return Catalog.open("sqlite:///catalog.db", directory)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = write_config(tmp_path)
    with open_catalog(tmp_path) as catalog:
        for name in ("easydb", "otherdb"):
            catalog.create_database(
                name, "s0", name, f"sg_{name}", PASSWORDS[name], PASSWORDS[f"{name}_RO"]
            )
    return path


@pytest.fixture
def managed_config(tmp_path: Path) -> Path:
    path = write_config(tmp_path, "managed")
    with open_catalog(tmp_path) as catalog:
        catalog.create_database("easydb", "s0", "easydb", "sg_easydb", MANAGED_ADMIN, MANAGED_RO)
    return path


def runner_for(path: Path) -> Run:
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--config", str(path), *args], input=input)

    return run


@pytest.fixture
def run(config_path: Path) -> Run:
    return runner_for(config_path)


def account(config_path: Path, user: str, host: str = "%") -> Account | None:
    with open_catalog(config_path.parent) as catalog:
        return catalog.snapshot().find_account(user, host)


def privileges(config_path: Path, user: str, db: str, host: str = "%") -> Priv:
    with open_catalog(config_path.parent) as catalog:
        snapshot = catalog.snapshot()
        found = snapshot.find_account(user, host)
        assert found is not None
        return snapshot.privileges(found.id, db)


def catalog_version(config_path: Path) -> int:
    with open_catalog(config_path.parent) as catalog:
        return catalog.snapshot().version


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def refused(result: Result, message: str) -> None:
    """A refusal: non-zero status, exactly one ``Error: ...`` line on stderr, nothing on stdout."""
    assert result.exit_code != 0
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert lines == [f"Error: {message}"], result.stderr


def generated(output: str, pattern: str) -> str:
    match = re.fullmatch(pattern, output.strip())
    assert match is not None, output
    return match.group(1)


def create(run: Run, user: str, password: str, *options: str) -> None:
    ok(
        run(
            "users",
            "create",
            "--database",
            "easydb",
            "--password-stdin",
            *options,
            user,
            input=password + "\n",
        )
    )


# --------------------------------------------------------------------------- users list


def test_list_table_like_the_platform(run: Run, config_path: Path) -> None:
    create(run, "writer", "Writer#pass1")
    create(run, "reader", "Reader#pass1", "--read-only")
    create(run, "office", "Office#pass1", "--host", "10.0.0.%", "--read-only")
    assert ok(run("users", "list", "--database", "easydb")) == (
        "+-----------+----------+-----------+-----------+\n"
        "| USERNAME  |   HOST   | READ-ONLY | PROTECTED |\n"
        "+-----------+----------+-----------+-----------+\n"
        "| easydb    | %        | false     | true      |\n"
        "| easydb_RO | %        | true      | true      |\n"
        "| writer    | %        | false     | false     |\n"
        "| reader    | %        | true      | false     |\n"
        "| office    | 10.0.0.% | true      | false     |\n"
        "+-----------+----------+-----------+-----------+\n"
    )


def test_list_table_format_is_the_default_and_can_be_named(run: Run) -> None:
    assert ok(run("users", "list", "--database", "easydb")) == ok(
        run("users", "list", "--database", "easydb", "--format", "table")
    )


def test_list_json(run: Run) -> None:
    create(run, "reader", "Reader#pass1", "--read-only")
    rows = json.loads(ok(run("users", "list", "--database", "easydb", "--format", "json")))
    assert rows == [
        {"username": "easydb", "host": "%", "read_only": False, "protected": True},
        {"username": "easydb_RO", "host": "%", "read_only": True, "protected": True},
        {"username": "reader", "host": "%", "read_only": True, "protected": False},
    ]


def test_list_shows_only_that_database(run: Run) -> None:
    ok(
        run(
            "users",
            "create",
            "--database",
            "otherdb",
            "--password-stdin",
            "elsewhere",
            input="Else#pass1\n",
        )
    )
    listed = ok(run("users", "list", "--database", "easydb"))
    assert "elsewhere" not in listed and "otherdb" not in listed
    assert "elsewhere" in ok(run("users", "list", "--database", "otherdb"))


def test_list_database_names_are_case_insensitive(run: Run) -> None:
    assert "easydb_RO" in ok(run("users", "list", "--database", "EasyDB"))


def test_list_unknown_database(run: Run) -> None:
    refused(run("users", "list", "--database", "nodb"), 'Unknown database "nodb".')


def test_list_bad_format(run: Run) -> None:
    result = run("users", "list", "--database", "easydb", "--format", "xml")
    assert result.exit_code == 2
    assert "xml" in result.stderr


def test_users_need_a_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["users", "list", "--database", "easydb"])
    assert result.exit_code == 2
    assert "--config" in result.stderr


def test_database_option_is_required(run: Run) -> None:
    result = run("users", "list")
    assert result.exit_code == 2
    assert "--database" in result.stderr


# --------------------------------------------------------------------------- users create


def test_create_with_a_chosen_password_prompts_twice_without_echo(
    run: Run, config_path: Path
) -> None:
    result = run(
        "users", "create", "--database", "easydb", "alice", input="Alice#pass1\nAlice#pass1\n"
    )
    assert ok(result) == 'User "alice" created.\n'
    assert "Alice#pass1" not in result.output  # hidden input, never printed
    assert "Password (leave empty to generate one)" in result.stderr
    assert "Repeat for confirmation" in result.stderr
    created = account(config_path, "alice")
    assert created is not None and created.owner_db == "easydb" and not created.protected
    assert verify_password(created.password_hash, "Alice#pass1")
    assert privileges(config_path, "alice", "easydb") == ALL_PRIVILEGES


def test_create_read_only_gets_select(run: Run, config_path: Path) -> None:
    create(run, "reader", "Reader#pass1", "--read-only")
    assert privileges(config_path, "reader", "easydb") == Priv.SELECT


def test_create_mismatched_confirmation_asks_again(run: Run, config_path: Path) -> None:
    result = run(
        "users",
        "create",
        "--database",
        "easydb",
        "alice",
        input="Alice#pass1\nAlice#pass2\nAlice#pass3\nAlice#pass3\n",
    )
    assert ok(result) == 'User "alice" created.\n'
    assert "The two entered values do not match" in result.stderr
    created = account(config_path, "alice")
    assert created is not None and verify_password(created.password_hash, "Alice#pass3")


def test_create_empty_answer_generates_20_characters_under_polardbx(
    run: Run, config_path: Path
) -> None:
    output = ok(run("users", "create", "--database", "easydb", "bobby", input="\n\n"))
    password = generated(output, r'User "bobby" created with password "(.+)"\.')
    assert len(password) == 20
    profile_by_name("polardbx").validate_password(password)
    created = account(config_path, "bobby")
    assert created is not None and verify_password(created.password_hash, password)


def test_create_generates_64_characters_under_managed(managed_config: Path) -> None:
    run = runner_for(managed_config)
    output = ok(run("users", "create", "--database", "easydb", "my_user", input="\n\n"))
    password = generated(output, r'User "my_user" created with password "(.+)"\.')
    assert len(password) == 64
    profile_by_name("managed").validate_password(password)
    created = account(managed_config, "my_user")
    assert created is not None and verify_password(created.password_hash, password)


def test_create_managed_policy_rules_apply(managed_config: Path) -> None:
    run = runner_for(managed_config)
    refused(
        run(
            "users",
            "create",
            "--database",
            "easydb",
            "--password-stdin",
            "my_user",
            input="short\n",
        ),
        profile_by_name("managed").password_error,
    )
    refused(
        run(
            "users",
            "create",
            "--database",
            "easydb",
            "--password-stdin",
            "abc",
            input="A-long-enough-password-here-123\n",
        ),
        profile_by_name("managed").username_error,
    )
    assert account(managed_config, "my_user") is None


def test_create_password_stdin(run: Run, config_path: Path) -> None:
    result = run(
        "users",
        "create",
        "--database",
        "easydb",
        "--password-stdin",
        "carol",
        input="Carol#pass1\n",
    )
    assert ok(result) == 'User "carol" created.\n'
    assert "Carol#pass1" not in result.output
    created = account(config_path, "carol")
    assert created is not None and verify_password(created.password_hash, "Carol#pass1")


def test_create_password_stdin_empty_line_generates(run: Run, config_path: Path) -> None:
    output = ok(
        run("users", "create", "--database", "easydb", "--password-stdin", "carol", input="\n")
    )
    password = generated(output, r'User "carol" created with password "(.+)"\.')
    created = account(config_path, "carol")
    assert created is not None and verify_password(created.password_hash, password)


def test_create_password_stdin_without_input(run: Run, config_path: Path) -> None:
    refused(
        run("users", "create", "--database", "easydb", "--password-stdin", "carol", input=""),
        "expected the new password on standard input",
    )
    assert account(config_path, "carol") is None


def test_create_with_host(run: Run, config_path: Path) -> None:
    output = ok(
        run(
            "users",
            "create",
            "--database",
            "easydb",
            "--host",
            "10.0.0.%",
            "--password-stdin",
            "office",
            input="Office#pass1\n",
        )
    )
    assert output == 'User "office@10.0.0.%" created.\n'
    assert account(config_path, "office", "10.0.0.%") is not None
    assert account(config_path, "office") is None


@pytest.mark.parametrize(
    ("user", "password", "options", "message"),
    [
        ("alice", "bad pass", (), profile_by_name("polardbx").password_error),
        ("alice", "x", (), profile_by_name("polardbx").password_error),
        ("al", "Alice#pass1", (), profile_by_name("polardbx").username_error),
        ("my_user", "Alice#pass1", (), profile_by_name("polardbx").username_error),
        (
            "easydb_RO",
            "Alice#pass1",
            (),
            '"easydb_RO" is the name of a protected account; choose another name.',
        ),
        (
            "otherdb",
            "Alice#pass1",
            (),
            '"otherdb" is the name of a protected account; choose another name.',
        ),
        (
            "alice",
            "Alice#pass1",
            ("--host", "localhost"),
            "Invalid host. Please use IP address instead.",
        ),
    ],
)
def test_create_refusals(
    run: Run, config_path: Path, user: str, password: str, options: tuple[str, ...], message: str
) -> None:
    before = catalog_version(config_path)
    refused(
        run(
            "users",
            "create",
            "--database",
            "easydb",
            "--password-stdin",
            *options,
            user,
            input=password + "\n",
        ),
        message,
    )
    assert catalog_version(config_path) == before  # nothing half-done


def test_create_existing_user(run: Run, config_path: Path) -> None:
    create(run, "alice", "Alice#pass1")
    before = catalog_version(config_path)
    refused(
        run(
            "users",
            "create",
            "--database",
            "easydb",
            "--password-stdin",
            "alice",
            input="Other#pass1\n",
        ),
        'User "alice" already exists.',
    )
    assert catalog_version(config_path) == before
    found = account(config_path, "alice")
    assert found is not None and verify_password(found.password_hash, "Alice#pass1")


def test_create_a_user_name_another_database_owns(run: Run, config_path: Path) -> None:
    # otherdb owns "bobby": no account of that name, at any host, for easydb (a more specific
    # host would capture otherdb's bobby's logins).
    ok(
        run(
            "users",
            "create",
            "--database",
            "otherdb",
            "--password-stdin",
            "bobby",
            input="Bobby#pass1\n",
        )
    )
    before = catalog_version(config_path)
    for host in ("127.0.0.1", "1%", "%"):
        refused(
            run(
                "users",
                "create",
                "--database",
                "easydb",
                "--password-stdin",
                "--host",
                host,
                "bobby",
                input="Other#pass1\n",
            ),
            f'User "{"bobby" if host == "%" else "bobby@" + host}" already exists.',
        )
    assert catalog_version(config_path) == before
    assert account(config_path, "bobby", "127.0.0.1") is None


def test_create_unknown_database_refused_before_the_prompt(run: Run) -> None:
    result = run("users", "create", "--database", "nodb", "alice", input="Alice#pass1\n" * 2)
    refused(result, 'Unknown database "nodb".')
    assert "Password" not in result.stderr


def test_create_refusal_never_echoes_the_password(run: Run) -> None:
    result = run(
        "users",
        "create",
        "--database",
        "easydb",
        "--password-stdin",
        "alice",
        input="bad 'secret' pass\n",
    )
    assert result.exit_code == 1
    assert "secret" not in result.output


# --------------------------------------------------------------------------- update-password


def test_update_password_chosen(run: Run, config_path: Path) -> None:
    create(run, "alice", "Alice#pass1")
    result = run(
        "users",
        "update-password",
        "--database",
        "easydb",
        "alice",
        input="Alice#pass2\nAlice#pass2\n",
    )
    assert ok(result) == 'User "alice" updated.\n'
    assert "Alice#pass2" not in result.output
    found = account(config_path, "alice")
    assert found is not None
    assert verify_password(found.password_hash, "Alice#pass2")
    assert not verify_password(found.password_hash, "Alice#pass1")


def test_update_password_generated(run: Run, config_path: Path) -> None:
    create(run, "alice", "Alice#pass1")
    output = ok(run("users", "update-password", "--database", "easydb", "alice", input="\n\n"))
    password = generated(output, r'User "alice" updated with password "(.+)"\.')
    assert len(password) == 20
    found = account(config_path, "alice")
    assert found is not None and verify_password(found.password_hash, password)


def test_update_password_stdin_and_host(run: Run, config_path: Path) -> None:
    create(run, "office", "Office#pass1", "--host", "10.0.0.%")
    output = ok(
        run(
            "users",
            "update-password",
            "--database",
            "easydb",
            "--host",
            "10.0.0.%",
            "--password-stdin",
            "office",
            input="Office#pass2\n",
        )
    )
    assert output == 'User "office@10.0.0.%" updated.\n'
    found = account(config_path, "office", "10.0.0.%")
    assert found is not None and verify_password(found.password_hash, "Office#pass2")


def test_a_user_only_at_another_host_is_named_with_host(run: Run, config_path: Path) -> None:
    """lily exists only at 10.0.0.%: the error says so and names --host (before any prompt)."""
    create(run, "lily", "Lily#pass1", "--host", "10.0.0.%")
    for args, data in (
        (("update-password", "--database", "easydb", "lily"), None),
        (("delete", "--database", "easydb", "lily"), None),
        (("unlock", "--database", "easydb", "lily"), None),
        (("set-limit", "--database", "easydb", "lily", "5"), None),
    ):
        refused(
            run("users", *args, input=data),
            'No user "lily" at host % in database "easydb"; it exists at host 10.0.0.%: '
            "name it with --host 10.0.0.%",
        )
    create(run, "lily", "Lily#pass2", "--host", "10.1.%")
    refused(
        run("users", "update-password", "--database", "easydb", "--host", "10.2.%", "lily"),
        'No user "lily" at host 10.2.% in database "easydb"; it exists at hosts 10.0.0.%, '
        "10.1.%: name one with --host 10.0.0.%",
    )
    # Named with its host, it works; a name no host has stays the plain refusal.
    ok(
        run(
            "users",
            "update-password",
            "--database",
            "easydb",
            "--host",
            "10.1.%",
            "--password-stdin",
            "lily",
            input="Lily#pass3\n",
        )
    )
    refused(
        run("users", "update-password", "--database", "easydb", "nobody"),
        'No user "nobody" in database "easydb".',
    )


def test_update_password_keeps_privileges(run: Run, config_path: Path) -> None:
    create(run, "reader", "Reader#pass1", "--read-only")
    ok(
        run(
            "users",
            "update-password",
            "--database",
            "easydb",
            "--password-stdin",
            "reader",
            input="Reader#pass2\n",
        )
    )
    assert privileges(config_path, "reader", "easydb") == Priv.SELECT


@pytest.mark.parametrize(
    ("user", "database", "password", "message"),
    [
        (
            "easydb",
            "easydb",
            "Admin#pass9",
            'User "easydb" is protected: only the operator can reset its password '
            "(shardgate database reset-password).",
        ),
        (
            "easydb_RO",
            "easydb",
            "Admin#pass9",
            'User "easydb_RO" is protected: only the operator can reset its password '
            "(shardgate database reset-password).",
        ),
        ("ghost", "easydb", "Ghost#pass1", 'No user "ghost" in database "easydb".'),
        ("elsewhere", "easydb", "Else#pass2", 'No user "elsewhere" in database "easydb".'),
        ("alice", "easydb", "no", profile_by_name("polardbx").password_error),
        ("alice", "nodb", "Alice#pass2", 'Unknown database "nodb".'),
    ],
)
def test_update_password_refusals(
    run: Run, config_path: Path, user: str, database: str, password: str, message: str
) -> None:
    create(run, "alice", "Alice#pass1")
    ok(
        run(
            "users",
            "create",
            "--database",
            "otherdb",
            "--password-stdin",
            "elsewhere",
            input="Else#pass1\n",
        )
    )
    before = catalog_version(config_path)
    refused(
        run(
            "users",
            "update-password",
            "--database",
            database,
            "--password-stdin",
            user,
            input=password + "\n",
        ),
        message,
    )
    assert catalog_version(config_path) == before
    alice = account(config_path, "alice")
    assert alice is not None and verify_password(alice.password_hash, "Alice#pass1")
    admin = account(config_path, "easydb")
    assert admin is not None and verify_password(admin.password_hash, PASSWORDS["easydb"])


# --------------------------------------------------------------------------- delete


def test_delete(run: Run, config_path: Path) -> None:
    create(run, "alice", "Alice#pass1")
    assert ok(run("users", "delete", "--database", "easydb", "alice")) == 'User "alice" deleted.\n'
    assert account(config_path, "alice") is None
    assert "alice" not in ok(run("users", "list", "--database", "easydb"))


def test_delete_with_host(run: Run, config_path: Path) -> None:
    create(run, "office", "Office#pass1", "--host", "10.0.0.%")
    refused(
        run("users", "delete", "--database", "easydb", "office"),
        'No user "office" at host % in database "easydb"; it exists at host 10.0.0.%: '
        "name it with --host 10.0.0.%",
    )
    output = ok(run("users", "delete", "--database", "easydb", "--host", "10.0.0.%", "office"))
    assert output == 'User "office@10.0.0.%" deleted.\n'
    assert account(config_path, "office", "10.0.0.%") is None


@pytest.mark.parametrize(
    ("user", "database", "message"),
    [
        ("easydb", "easydb", 'User "easydb" is protected and cannot be deleted.'),
        ("easydb_RO", "easydb", 'User "easydb_RO" is protected and cannot be deleted.'),
        ("otherdb", "easydb", 'User "otherdb" is protected and cannot be deleted.'),
        ("ghost", "easydb", 'No user "ghost" in database "easydb".'),
        ("elsewhere", "easydb", 'No user "elsewhere" in database "easydb".'),
        ("alice", "nodb", 'Unknown database "nodb".'),
    ],
)
def test_delete_refusals(
    run: Run, config_path: Path, user: str, database: str, message: str
) -> None:
    create(run, "alice", "Alice#pass1")
    ok(
        run(
            "users",
            "create",
            "--database",
            "otherdb",
            "--password-stdin",
            "elsewhere",
            input="Else#pass1\n",
        )
    )
    before = catalog_version(config_path)
    refused(run("users", "delete", "--database", database, user), message)
    assert catalog_version(config_path) == before
    assert account(config_path, "alice") is not None
    assert account(config_path, "elsewhere") is not None


# --------------------------------------------------------------------------- reset-password


def test_reset_builtin_admin_generated(run: Run, config_path: Path) -> None:
    output = ok(run("database", "reset-password", "easydb"))
    password = generated(output, r'Account "easydb" updated with password "(.+)"\.')
    assert len(password) == 20
    found = account(config_path, "easydb")
    assert found is not None and verify_password(found.password_hash, password)
    ro = account(config_path, "easydb_RO")
    assert ro is not None and verify_password(ro.password_hash, PASSWORDS["easydb_RO"])


def test_reset_builtin_read_only_from_stdin(run: Run, config_path: Path) -> None:
    result = run(
        "database",
        "reset-password",
        "easydb",
        "--read-only",
        "--password-stdin",
        input="NewRO#pass1\n",
    )
    assert ok(result) == 'Account "easydb_RO" updated.\n'
    assert "NewRO#pass1" not in result.output
    found = account(config_path, "easydb_RO")
    assert found is not None and verify_password(found.password_hash, "NewRO#pass1")


def test_reset_builtin_generates_64_under_managed(managed_config: Path) -> None:
    output = ok(runner_for(managed_config)("database", "reset-password", "easydb"))
    password = generated(output, r'Account "easydb" updated with password "(.+)"\.')
    assert len(password) == 64


def test_reset_builtin_refusals(run: Run, config_path: Path) -> None:
    before = catalog_version(config_path)
    refused(
        run("database", "reset-password", "easydb", "--password-stdin", input="bad pass\n"),
        profile_by_name("polardbx").password_error,
    )
    refused(run("database", "reset-password", "nodb"), 'Unknown database "nodb".')
    refused(
        run("database", "reset-password", "easydb", "--password-stdin", input=""),
        "expected the new password on standard input",
    )
    assert catalog_version(config_path) == before


def test_existing_commands_still_there(run: Run) -> None:
    help_text = ok(run("--help"))
    for command in ("serve", "database", "dev", "users"):
        assert command in help_text
    assert "create" in ok(run("database", "--help"))
    assert "reset-password" in ok(run("database", "--help"))


def test_audit_never_holds_a_password(run: Run, config_path: Path) -> None:
    create(run, "alice", "Alice#pass1")
    ok(
        run(
            "users",
            "update-password",
            "--database",
            "easydb",
            "--password-stdin",
            "alice",
            input="Alice#pass2\n",
        )
    )
    generated_output = ok(
        run("users", "update-password", "--database", "easydb", "alice", input="\n\n")
    )
    secret = generated(generated_output, r'User "alice" updated with password "(.+)"\.')
    ok(run("database", "reset-password", "easydb", "--password-stdin", input="Admin#pass2\n"))
    with open_catalog(config_path.parent) as catalog:
        text = repr(catalog.audit())
    for password in ("Alice#pass1", "Alice#pass2", secret, "Admin#pass2"):
        assert password not in text
    assert "operator" in text


# --------------------------------------------------------------------------- real process


def test_console_script_subprocess(config_path: Path) -> None:
    script = Path(sys.executable).parent / "shardgate"
    assert script.exists(), script
    completed = subprocess.run(
        [str(script), "--config", str(config_path), "users", "list", "--database", "easydb"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines()[1] == "| USERNAME  | HOST | READ-ONLY | PROTECTED |"
    assert "| easydb_RO | %    | true      | true      |" in completed.stdout
    failed = subprocess.run(
        [
            str(script),
            "--config",
            str(config_path),
            "users",
            "delete",
            "--database",
            "easydb",
            "easydb",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.strip() == 'Error: User "easydb" is protected and cannot be deleted.'


# --------------------------------------------------------------------------- database create


def test_database_create_then_manage_users(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    shard = shards[0]
    path = write_config(
        tmp_path,
        shards=(
            f'[[shards]]\nname = "s0"\nhost = "{shard.host}"\nport = {shard.port}\n'
            f'user = "{shard.user}"\npassword = "{shard.password}"\n'
        ),
    )
    run = runner_for(path)
    output = ok(run("database", "create", "clidb", "--shard", "s0"))
    lines = output.splitlines()
    assert lines[0] == "Database 'clidb' created on shard 's0'."
    admin_password = generated(lines[1], r'Account "clidb" created with password "(.+)"\.')
    generated(lines[2], r'Account "clidb_RO" created with password "(.+)"\.')
    admin = account(path, "clidb")
    assert admin is not None and verify_password(admin.password_hash, admin_password)
    ok(
        run(
            "users",
            "create",
            "--database",
            "clidb",
            "--read-only",
            "--password-stdin",
            "reporter",
            input="Report#pass1\n",
        )
    )
    assert json.loads(ok(run("users", "list", "--database", "clidb", "--format", "json"))) == [
        {"username": "clidb", "host": "%", "read_only": False, "protected": True},
        {"username": "clidb_RO", "host": "%", "read_only": True, "protected": True},
        {"username": "reporter", "host": "%", "read_only": True, "protected": False},
    ]
    refused(run("database", "create", "clidb", "--shard", "s0"), "database 'clidb' already exists")
    refused(
        run("database", "create", "clidb2", "--shard", "s9"), "unknown shard 's9' (configured: s0)"
    )


def test_update_password_retain_current_then_discard(run: Run, config_path: Path) -> None:
    create(run, "rotating", "Old#pass1")
    out = ok(
        run(
            "users",
            "update-password",
            "--database",
            "easydb",
            "--password-stdin",
            "--retain-current",
            "rotating",
            input="New#pass2\n",
        )
    )
    assert out == 'User "rotating" updated.\n'
    found = account(config_path, "rotating")
    assert found is not None and found.retained_password_hash is not None
    assert verify_password(found.password_hash, "New#pass2")
    assert verify_password(found.retained_password_hash, "Old#pass1")
    out = ok(run("users", "discard-old-password", "--database", "easydb", "rotating"))
    assert out == 'User "rotating" now has only its current password.\n'
    found = account(config_path, "rotating")
    assert found is not None and not found.has_retained_password
    missing = run("users", "discard-old-password", "--database", "easydb", "nobody1")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "nobody1" in missing.stderr


# --------------------------------------------------------------------------- issue #7


def test_create_with_max_connections_and_set_limit(run: Run, config_path: Path) -> None:
    create(run, "pooled", "Pooled#pass1", "--max-connections", "4")
    found = account(config_path, "pooled")
    assert found is not None and found.max_user_connections == 4
    out = ok(run("users", "set-limit", "--database", "easydb", "pooled", "9"))
    assert out == 'User "pooled" now has max_user_connections 9.\n'
    found = account(config_path, "pooled")
    assert found is not None and found.max_user_connections == 9
    out = ok(run("users", "set-limit", "--database", "easydb", "pooled", "0"))
    assert out == 'User "pooled" now has max_user_connections the server default.\n'
    refused(
        run("users", "set-limit", "--database", "easydb", "easydb_RO", "3"),
        'User "easydb_RO" is protected: its connection limit is not changed.',
    )
    refused(
        run("users", "set-limit", "--database", "otherdb", "pooled", "3"),
        'No user "pooled" in database "otherdb".',
    )
    assert run("users", "set-limit", "--database", "easydb", "pooled", "-1").exit_code != 0


def test_unlock(run: Run, config_path: Path) -> None:
    create(run, "locked1", "Locked#pass1")
    found = account(config_path, "locked1")
    assert found is not None
    out = ok(run("users", "unlock", "--database", "easydb", "locked1"))
    assert out == 'User "locked1" was not locked.\n'
    with open_catalog(config_path.parent) as catalog:
        assert catalog.record_login_failure(found.id, 1, 600.0, "10.0.0.1") is not None
        admin = catalog.snapshot().find_account("easydb", "%")
        assert admin is not None
        assert catalog.record_login_failure(admin.id, 1, 600.0, "10.0.0.1") is not None
    version = catalog_version(config_path)
    assert ok(run("users", "unlock", "--database", "easydb", "locked1")) == (
        'User "locked1" unlocked.\n'
    )
    assert catalog_version(config_path) == version + 1
    # The operator unlocks a built-in too (a locked administrator cannot log in to do it).
    assert ok(run("users", "unlock", "--database", "easydb", "easydb")) == (
        'User "easydb" unlocked.\n'
    )
    for user in ("locked1", "easydb"):
        again = account(config_path, user)
        assert again is not None and again.locked_until is None and again.failed_logins == 0
    refused(
        run("users", "unlock", "--database", "easydb", "nobody1"),
        'No user "nobody1" in database "easydb".',
    )
