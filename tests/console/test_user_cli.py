"""`posterm-hq user`: accounts and tokens from the command line; bad input changes nothing."""

from __future__ import annotations

import pytest

from terminal.hq.cli import main
from terminal.hq.console import accounts
from terminal.hq.console.db import ConsoleDb
from terminal.hq.console.models import ApiToken, ConsoleAudit, ConsoleUser
from tests.console.chain import on_console_db


def users(url: str) -> dict[str, tuple[str, str]]:
    return on_console_db(url, lambda: {u.name: (u.role, u.stores) for u in ConsoleUser.select()})


def test_add_a_user_from_a_password_file_then_a_token(tmp_path, capsys) -> None:
    url = str(tmp_path / "hq.db")
    password = tmp_path / "pw"
    password.write_text("a long enough password\n")
    assert main(["user", "add", "wang", "--role", "store_manager", "--stores", "S001,S002",
                 "--db", url, "--password-file", str(password)]) == 0
    assert users(url) == {"wang": ("store_manager", "S001,S002")}
    assert main(["user", "token", "wang", "--db", url]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    db = ConsoleDb(url)
    try:
        who = db.call(accounts.token_principal, secret)
        assert who is not None and who.stores == ("S001", "S002") and who.via == "api"
        assert db.call(lambda: ApiToken.get().digest) != secret  # stored as a digest only
        assert db.call(lambda: [a.action for a in ConsoleAudit.select()]) == ["user.add",
                                                                               "token.issue"]
        assert db.call(lambda: accounts.authenticate("wang", "a long enough password",
                                                     "cli")) is not None
    finally:
        db.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "store_manager"], "needs --stores"),
    (["--role", "service", "--stores", "S001"], "--stores is for store_manager"),
    (["--role", "store_manager", "--stores", "S0/1"], "store id"),
    (["--role", "wizard"], "invalid choice"),
])
def test_bad_input_is_refused_and_adds_nobody(tmp_path, capsys, args, message) -> None:
    url = str(tmp_path / "hq.db")
    password = tmp_path / "pw"
    password.write_text("a long enough password")
    try:
        code = main(["user", "add", "li", *args, "--db", url, "--password-file", str(password)])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert users(url) == {}


def test_a_short_password_and_a_second_user_of_a_name_are_refused(tmp_path, capsys) -> None:
    url = str(tmp_path / "hq.db")
    short, good = tmp_path / "short", tmp_path / "good"
    short.write_text("short")
    good.write_text("a long enough password")
    assert main(["user", "add", "li", "--role", "service", "--db", url,
                 "--password-file", str(short)]) == 2
    assert "10 to 1024 characters" in capsys.readouterr().err
    assert main(["user", "add", "li", "--role", "service", "--db", url,
                 "--password-file", str(good)]) == 0
    assert main(["user", "add", "li", "--role", "admin", "--db", url,
                 "--password-file", str(good)]) == 2
    assert "exists already" in capsys.readouterr().err
    assert users(url) == {"li": ("service", "")}
