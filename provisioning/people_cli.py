"""`kiosq server user ...` (the hall's staff accounts) and `kiosq server token list|revoke`.

What the command line does is written to the audit log as `cli:<the Unix user>` from
`local`. Passwords are read from a prompt (twice) or one line of standard input, never
from an argument (arguments show in `ps` and shell history).
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kiosq.provisioning.options import CONTEXT, data_dir_option, database_option, hall_option, open_hall_store

if TYPE_CHECKING:
    from kiosq.queue.people import User
    from kiosq.queue.store import Store, Who

_TTL = re.compile(r"^\s*(\d{1,5})\s*([hd])\s*$")


def cli_who() -> Who:
    from kiosq.queue.store import Who

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's uid)
        name = "unknown"
    return Who(f"cli:{name}", "cli", "local")


def parse_token_ttl(text: str) -> timedelta:
    """'12h', '30d' -> a timedelta of 1 hour to 3650 days; BadParameter otherwise."""
    m = _TTL.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration; write e.g. 12h or 30d", param_hint="--ttl")
    ttl = timedelta(hours=int(m.group(1))) if m.group(2) == "h" else timedelta(days=int(m.group(1)))
    if not timedelta(hours=1) <= ttl <= timedelta(days=3650):
        raise click.BadParameter(f"{text!r}: a token lives from 1 hour to 3650 days", param_hint="--ttl")
    return ttl


def _windows(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("give window numbers separated by commas, e.g. 1,2,5") from None


def _read_password(login: str, from_stdin: bool) -> str:
    from kiosq.queue.people import MIN_PASSWORD, check_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = click.prompt(f"Password for {login} ({MIN_PASSWORD}+ characters)", hide_input=True,
                                confirmation_prompt=True)
    else:
        raise click.UsageError("give the password on standard input with --password-stdin "
                               "(e.g. from a password manager), or run this in a terminal to be asked")
    try:
        check_password(password, login)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return password


def local_times(store: Store, token: dict[str, Any]) -> dict[str, Any]:
    """A token's times (stored in UTC) in the hall's time zone."""
    from datetime import datetime

    return {k: (datetime.fromisoformat(v).astimezone(store.hall.tz).isoformat(timespec="seconds")
                if k.endswith("_at") and v else v) for k, v in token.items()}


def _view(user: User, sessions: int | None = None, tz: Any = None) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return None if value is None else value.astimezone(tz).isoformat(timespec="seconds")
    view: dict[str, Any] = {"login": user.login, "name": user.name, "role": user.role, "windows": list(user.windows),
            "created_at": when(user.created_at), "disabled_at": when(user.disabled_at),
            "last_sign_in_at": when(user.last_sign_in_at)}
    if sessions is not None:
        view["sessions"] = sessions
    return view


def _with_store(data_dir: Path, hall_file: Path | None, database_url: str | None) -> Store:
    return open_hall_store(data_dir, hall_file, database_url)


store_options = [data_dir_option, hall_option, database_option]


def _store_options(f: Any) -> Any:
    for option in reversed(store_options):
        f = option(f)
    return f


@click.group(context_settings=CONTEXT)
def user() -> None:
    """The hall's staff accounts: each clerk, supervisor and admin signs in as themselves.

    \b
    Example:
      kiosq server user add zhangmin --name 张敏 --role staff --windows 1,2
      kiosq server user list
      kiosq server user disable zhangmin
    """


@user.command("add", context_settings=CONTEXT)
@click.argument("login")
@click.option("--name", required=True, help="The name staff and citizens know, e.g. 张敏.")
@click.option("--role", type=click.Choice(["staff", "supervisor", "admin"]), required=True,
              help="staff: acts at its windows; supervisor: also approves rejections (all windows unless "
                   "--windows); admin: everything, /admin included.")
@click.option("--windows", callback=_windows, help="The windows a staff (or supervisor) account acts at, e.g. 1,2.")
@click.option("--password-stdin", is_flag=True, help="Read the password from one line of standard input.")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print the new user as JSON.")
def user_add(login: str, name: str, role: str, windows: tuple[int, ...] | None, password_stdin: bool,
             data_dir: Path, hall_file: Path | None, database_url: str | None, as_json: bool) -> None:
    """Create a staff account (the password asked twice, or one line of --password-stdin).

    \b
    Example:
      kiosq server user add zhangmin --name 张敏 --role staff --windows 1,2
      kiosq server user add chief --name 王主任 --role supervisor
    """
    from kiosq.queue.people import check_login, check_windows
    from kiosq.queue.store import AlreadyExists

    store = _with_store(data_dir, hall_file, database_url)
    try:
        try:
            login = check_login(login)
            check_windows(role, windows or (), store.hall.windows)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        password = _read_password(login, password_stdin)
        try:
            made = store.create_user(login, name, role, windows or (), password, cli_who())
        except (ValueError, AlreadyExists) as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(_view(made, tz=store.hall.tz), ensure_ascii=False))
    else:
        where = f" at windows {', '.join(map(str, made.windows))}" if made.windows else ""
        click.echo(f"user {made.login} ({made.name}), {made.role}{where}: signs in at the staff console")


@user.command("list", context_settings=CONTEXT)
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print the users as JSON.")
def user_list(data_dir: Path, hall_file: Path | None, database_url: str | None, as_json: bool) -> None:
    """List the hall's users (never a password).

    \b
    Example:
      kiosq server user list --json
    """
    store = _with_store(data_dir, hall_file, database_url)
    try:
        users = store.users()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([_view(u, n, store.hall.tz) for u, n in users], ensure_ascii=False))
        return
    if not users:
        click.echo("no users yet: kiosq server user add LOGIN --name NAME --role staff --windows 1")
        return
    for u, n in users:
        state = "DISABLED" if u.disabled else f"{n} session(s) open"
        windows = ",".join(map(str, u.windows)) or "-"
        last = (u.last_sign_in_at.astimezone(store.hall.tz).isoformat(timespec="minutes") if u.last_sign_in_at
                else "never signed in")
        click.echo(f"{u.login:<16} {u.name:<10} {u.role:<10} windows {windows:<8} {state:<18} {last}")


def _set_disabled(login: str, disabled: bool, data_dir: Path, hall_file: Path | None,
                  database_url: str | None) -> None:
    from kiosq.queue.store import NotFound

    store = _with_store(data_dir, hall_file, database_url)
    try:
        changed = store.set_user_disabled(login, disabled, cli_who())
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"user {changed.login} " + ("disabled: their sessions ended" if disabled else "enabled"))


@user.command("disable", context_settings=CONTEXT)
@click.argument("login")
@_store_options
def user_disable(login: str, data_dir: Path, hall_file: Path | None, database_url: str | None) -> None:
    """Disable a user: refused at once, open sessions included (the account and its record stay).

    \b
    Example:
      kiosq server user disable zhangmin
    """
    _set_disabled(login, True, data_dir, hall_file, database_url)


@user.command("enable", context_settings=CONTEXT)
@click.argument("login")
@_store_options
def user_enable(login: str, data_dir: Path, hall_file: Path | None, database_url: str | None) -> None:
    """Enable a disabled user again.

    \b
    Example:
      kiosq server user enable zhangmin
    """
    _set_disabled(login, False, data_dir, hall_file, database_url)


@user.command("passwd", context_settings=CONTEXT)
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the new password from one line of standard input.")
@_store_options
def user_passwd(login: str, password_stdin: bool, data_dir: Path, hall_file: Path | None,
                database_url: str | None) -> None:
    """Set a user's password; their open sessions end.

    \b
    Example:
      kiosq server user passwd zhangmin
    """
    from kiosq.queue.people import hash_password
    from kiosq.queue.store import NotFound

    store = _with_store(data_dir, hall_file, database_url)
    try:
        known = store.user(login)
        if known is None:
            raise click.ClickException(f"no user {login!r}; `kiosq server user list` shows the hall's users")
        password = _read_password(known.login, password_stdin)
        try:
            store.set_user_password(known.login, hash_password(password), cli_who())
        except NotFound as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"password of {known.login} set; their open sessions ended")


# -- tokens ----------------------------------------------------------------------------

@click.command("list", context_settings=CONTEXT)
@click.option("--all", "every", is_flag=True, help="Revoked and expired tokens too.")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print the tokens as JSON.")
def token_list(every: bool, data_dir: Path, hall_file: Path | None, database_url: str | None,
               as_json: bool) -> None:
    """List tokens: name, role, windows, created, last used, expires (never a secret).

    \b
    Example:
      kiosq server token list --all
    """
    store = _with_store(data_dir, hall_file, database_url)
    try:
        tokens = [local_times(store, t) for t in store.tokens(every=True)]
    finally:
        store.close()
    if not every:
        tokens = [t for t in tokens if t["state"] == "active"]
    if as_json:
        click.echo(json.dumps(tokens, ensure_ascii=False))
        return
    if not tokens:
        click.echo("no tokens" + ("" if every else " (--all shows revoked and expired ones)"))
        return
    for t in tokens:
        windows = ",".join(map(str, t["windows"])) or "-"
        click.echo(f"{t['name']:<16} {t['role']:<10} windows {windows:<8} {t['state']:<8} "
                   f"created {t['created_at'][:16]}  last used {(t['last_used_at'] or 'never')[:16]}  "
                   f"expires {(t['expires_at'] or 'never')[:16]}")


@click.command("revoke", context_settings=CONTEXT)
@click.argument("name")
@_store_options
def token_revoke(name: str, data_dir: Path, hall_file: Path | None, database_url: str | None) -> None:
    """Revoke the active tokens named NAME, of any role: refused from their next request.

    \b
    Example:
      kiosq server token revoke S1
    """
    store = _with_store(data_dir, hall_file, database_url)
    try:
        active = [t for t in store.tokens() if t["name"] == name]
        if not active:
            raise click.ClickException(f"no active token named {name!r}; `kiosq server token list` shows them")
        who = cli_who()
        if any(t["role"] == "terminal" for t in active):
            store.revoke_terminal(name, who)
        store.revoke_tokens(name, who)
    finally:
        store.close()
    roles = ", ".join(sorted({t["role"] for t in active}))
    click.echo(f"revoked {len(active)} token(s) named {name} ({roles}); a new one can be made with that name")
