"""`campaign secret`: values production accepts, and a staff password's hash."""

from __future__ import annotations

from typer.testing import CliRunner
from werkzeug.security import check_password_hash

from sender.cli import app
from sender.core.runmode import secret_weakness


def test_each_run_prints_a_new_strong_secret(runner: CliRunner) -> None:
    printed = [runner.invoke(app, ["secret"]) for _ in range(3)]
    assert all(result.exit_code == 0 for result in printed)
    values = [result.output.strip() for result in printed]
    assert len(set(values)) == 3
    for value in values:
        assert secret_weakness(value) is None
        assert (
            value.isascii() and " " not in value and ":" not in value
        )  # fits env, URL, basic auth


def test_password_hash_for_staff(runner: CliRunner) -> None:
    passphrase = "the organiser's long passphrase, 2026"
    result = runner.invoke(
        app, ["secret", "--password-hash"], input=f"{passphrase}\n{passphrase}\n"
    )
    assert result.exit_code == 0, result.output
    hashed = result.output.strip().splitlines()[-1]
    assert hashed.startswith("scrypt:") and check_password_hash(hashed, passphrase)
    assert passphrase not in result.output


def test_a_weak_password_gets_no_hash(runner: CliRunner) -> None:
    result = runner.invoke(app, ["secret", "--password-hash"], input="change-me\nchange-me\n")
    assert result.exit_code != 0
    assert "scrypt:" not in result.output
