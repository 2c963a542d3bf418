"""A terminal's config file (TOML, docs/terminal-config.md): written by `kiosq provision
init`, read by `kiosq kiosk --config`, `kiosq doctor` and `kiosq enroll`.

Every problem names the file, the key and what to do; unknown keys are errors, with the
nearest known key suggested. Relative paths in the file are taken from the file's own
folder, so a config and its token file can move together (systemd hands both to the kiosk
as credentials, in a folder of their own). The terminal token never sits in this file: it
lives in its own 0600 file, `[server] token_file`.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosq.base.privacy import replace_secret_file
from kiosq.devices.uri import DeviceURIError, parse_uri
from kiosq.kiosk.settings import LANGUAGES, PAPER_WIDTHS, KioskConfig

DEFAULT_TOKEN_FILE = "terminal.token"  # beside the config file
DEFAULT_CA_FILE = "hall-ca.pem"  # beside the config file: the hall CA `kiosq enroll --ca-fingerprint` pinned
DEFAULT_SIGNING_KEY = "hall-signing.pub"  # beside the config file: the key bundles must be signed with


@dataclass(frozen=True)
class Key:
    """One key of the file: its section, its kind and the TerminalConfig field it fills."""

    section: str
    name: str
    kind: str  # text, url, path, uri, serial_uri, paper, language, bool, seconds, pin_hash
    attr: str
    help: str

    @property
    def label(self) -> str:
        return f"[{self.section}] {self.name}"


KEYS = (
    Key("terminal", "id", "text", "terminal_id", "this terminal's name, e.g. T03 (shown on the maintenance screen)"),
    Key("terminal", "data_dir", "path", "data_dir", "the kiosk's working folder (outbox, built catalog)"),
    Key("server", "url", "url", "server_url", "the hall server, e.g. http://10.0.0.2:8000"),
    Key("server", "token_file", "path", "token_file",
        "file holding the terminal token (mode 0600; `kiosq enroll` writes it)"),
    Key("server", "ca_file", "path", "ca_file",
        "the hall CA (PEM) every https connection is verified against (`kiosq enroll --ca-fingerprint` writes it)"),
    Key("devices", "printer", "uri", "printer", "receipt printer URI, e.g. serial:/dev/ttyUSB0?baudrate=115200"),
    Key("devices", "paper_width", "paper", "paper_width", "receipt paper width in mm: 58 or 80"),
    Key("devices", "card_reader", "serial_uri", "card_reader", "ID card reader URI, e.g. serial:/dev/ttyUSB1"),
    Key("devices", "scanner", "serial_uri", "scanner", "QR/barcode scanner URI, e.g. serial:/dev/ttyACM0"),
    Key("devices", "a4_printer", "uri", "a4_printer", "A4 printer URI, e.g. cups:HALL_A4"),
    Key("content", "folder", "path", "content_dir",
        "the terminal's content folder (bundles/ and active.json; `kiosq content install`)"),
    Key("content", "catalog", "path", "catalog", "a catalog database shown as is (instead of a content folder)"),
    Key("content", "signing_key", "path", "signing_key",
        "the hall's bundle signing key (`kiosq enroll` writes it); bundles it did not sign are refused"),
    Key("screen", "language", "language", "language", "zh or en"),
    Key("screen", "elder_mode", "bool", "elder_mode", "start in 长辈模式 (large type): true or false"),
    Key("screen", "speech", "bool", "speech", "spoken prompts in 长辈模式: true or false"),
    Key("screen", "idle_timeout", "seconds", "idle_timeout", "seconds without a touch before '还在吗？'"),
    Key("maintenance", "pin_hash", "pin_hash", "pin_hash",
        "the maintenance PIN's scrypt hash (never the PIN; `kiosq provision init` makes it)"),
)
SECTIONS = tuple(dict.fromkeys(k.section for k in KEYS))
REQUIRED = {("terminal", "id")}


class TerminalConfigError(ValueError):
    """A config file that cannot be used; `problems` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class TerminalConfig:
    """What a terminal config file says, paths resolved. `kiosk_config()` turns it into
    the kiosk's KioskConfig (reading the token file)."""

    terminal_id: str
    source: Path | None = None
    data_dir: Path | None = None
    server_url: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None
    printer: str | None = None
    paper_width: int = 58
    card_reader: str | None = None
    scanner: str | None = None
    a4_printer: str | None = None
    content_dir: Path | None = None
    catalog: Path | None = None
    signing_key: Path | None = None
    language: str = "zh"
    elder_mode: bool = False
    speech: bool = True
    idle_timeout: float = 60.0
    pin_hash: str | None = field(default=None, repr=False)

    def read_token(self) -> str | None:
        """The terminal token from token_file; None when there is no such file yet."""
        if self.token_file is None:
            return None
        try:
            token = self.token_file.read_text("utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TerminalConfigError([f"{self.token_file}: cannot read the terminal token ({exc.strerror}); "
                                       "run this as a user that may read it, or check the file"]) from None
        return token or None

    def kiosk_config(self, **overrides: Any) -> KioskConfig:
        values: dict[str, Any] = dict(
            terminal_id=self.terminal_id, data_dir=self.data_dir, server_url=self.server_url,
            server_ca_file=self.ca_file, content_signing_key=self.signing_key, terminal_token=self.read_token(),
            printer_uri=self.printer,
            paper_mm=self.paper_width,
            card_reader_uri=self.card_reader, scanner_uri=self.scanner, a4_printer_uri=self.a4_printer,
            content_dir=self.content_dir, catalog_db=self.catalog, lang=self.language,
            elder=self.elder_mode, speech=self.speech, idle_timeout=self.idle_timeout,
            maintenance_pin_hash=self.pin_hash)
        values.update(overrides)
        return KioskConfig(**values)


def load_terminal_config(path: Path | str) -> KioskConfig:
    """The KioskConfig a terminal config file describes (its token read from token_file)."""
    return read_terminal_config(path).kiosk_config()


def read_terminal_config(path: Path | str) -> TerminalConfig:
    """Parse and check a terminal config file; TerminalConfigError lists every problem."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise TerminalConfigError([f"{path}: no such config file; "
                                   f"write one with `kiosq provision init --out {path}`"]) from None
    except OSError as exc:
        raise TerminalConfigError([f"{path}: cannot read it ({exc.strerror}); check its permissions "
                                   "(it is 0600: run as its owner)"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TerminalConfigError([f"{path}: not valid TOML ({exc}); fix that line"]) from None
    return parse_terminal_config(data, path)


def parse_terminal_config(data: dict, path: Path) -> TerminalConfig:
    problems: list[str] = []
    values: dict[str, Any] = {}
    known = {(k.section, k.name): k for k in KEYS}
    for section, table in data.items():
        if section not in SECTIONS:
            problems.append(f"{path}: {_unknown_section(section, table)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}: [{section}] is a table of keys, not a value; write it as [{section}] "
                            "with its keys on the lines below")
            continue
        for name, value in table.items():
            key = known.get((section, name))
            if key is None:
                problems.append(f"{path}: {_unknown_key(section, name)}")
                continue
            try:
                values[key.attr] = _check(key, value, path.absolute().parent)
            except ValueError as exc:
                problems.append(f"{path}: {key.label}: {exc}")
    for section, name in sorted(REQUIRED):
        table = data.get(section)
        if not isinstance(table, dict) or name not in table:
            problems.append(f"{path}: [{section}] {name}: required key is missing; add it, e.g. "
                            f"[{section}] {name} = \"T01\"")
    if values.get("content_dir") and values.get("catalog"):
        problems.append(f"{path}: [content] folder and [content] catalog are both set; keep one "
                        "(folder for a deployed terminal)")
    if problems:
        raise TerminalConfigError(problems)
    if "server_url" in values and "token_file" not in values:
        values["token_file"] = path.absolute().parent / DEFAULT_TOKEN_FILE
    if "server_url" in values and "ca_file" not in values:
        values["ca_file"] = path.absolute().parent / DEFAULT_CA_FILE
    if "server_url" in values and "signing_key" not in values:
        values["signing_key"] = path.absolute().parent / DEFAULT_SIGNING_KEY
    return TerminalConfig(source=path, **values)


def _unknown_section(section: str, table: object) -> str:
    if not isinstance(table, dict):  # a key written above every [section]
        return f"{_unknown_key(None, section)}"
    near = difflib.get_close_matches(section, SECTIONS, n=1)
    hint = f"did you mean [{near[0]}]?" if near else f"the sections are {', '.join(f'[{s}]' for s in SECTIONS)}"
    return f"[{section}]: unknown section; {hint}"


def _unknown_key(section: str | None, name: str) -> str:
    where = f"[{section}] {name}" if section else f"{name} (outside any section)"
    same = [k.name for k in KEYS if k.section == section]
    near = difflib.get_close_matches(name, same, n=1, cutoff=0.6)
    if near:
        return f"{where}: unknown key; did you mean [{section}] {near[0]}?"
    elsewhere = [k for k in KEYS if k.name == name] or \
        [k for k in KEYS if k.name in difflib.get_close_matches(name, [k.name for k in KEYS], n=1, cutoff=0.6)]
    if elsewhere:
        return f"{where}: unknown key; did you mean {elsewhere[0].label}?"
    listed = ", ".join(same) if same else ", ".join(k.label for k in KEYS)
    return f"{where}: unknown key; the keys here are {listed}"


def _check(key: Key, value: object, base: Path) -> Any:
    """The value of one key, checked and converted; ValueError says what is wrong and what to write."""
    kind = key.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"is true or false (no quotes), not {_toml(value)}")
        return value
    if kind == "paper":
        if isinstance(value, bool) or value not in PAPER_WIDTHS:
            raise ValueError(f"is {' or '.join(map(str, PAPER_WIDTHS))} (a number, no quotes), not {_toml(value)}")
        return value
    if kind == "seconds":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"is a positive number of seconds, e.g. 60, not {_toml(value)}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"is a string in quotes, not {_toml(value)}")
    if not value.strip():
        raise ValueError("is empty; give a value or delete the line")
    if kind == "language" and value not in LANGUAGES:
        raise ValueError(f"is one of {', '.join(LANGUAGES)}, not {value!r}")
    if kind == "url" and not value.startswith(("http://", "https://")):
        raise ValueError(f"starts with http:// or https://, e.g. http://10.0.0.2:8000, not {value!r}")
    if kind in ("uri", "serial_uri"):
        try:
            uri = parse_uri(value)
        except DeviceURIError as exc:
            raise ValueError(str(exc)) from None
        if kind == "serial_uri" and uri.scheme != "serial":
            raise ValueError(f"{value!r}: this device is on a serial port; for example serial:/dev/ttyUSB1")
    if kind == "pin_hash" and (not value.startswith("scrypt$") or value.count("$") != 5):
        raise ValueError("is not a PIN hash made by kiosq; set the PIN again with "
                         "`kiosq provision init` (it writes the hash, never the PIN)")
    if kind == "path":
        return base / Path(value).expanduser()
    return value.rstrip("/") if kind == "url" else value


def _toml(value: object) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (str, bool, int, float)) else repr(value)


# --- writing -----------------------------------------------------------------------------

def render_terminal_config(config: TerminalConfig) -> str:
    """The file for `config`, every key with a comment; what `read_terminal_config` reads back."""
    lines = ["# kiosq terminal config: docs/terminal-config.md explains every key.",
             "# Keep this file 0600: it holds the maintenance PIN's hash.", ""]
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for key in (k for k in KEYS if k.section == section):
            value = getattr(config, key.attr)
            text = _render_value(key, value, config.source)
            lines.append(f"# {key.help}")
            lines.append(f"{key.name} = {text}" if text is not None else f"# {key.name} =")
        lines.append("")
    return "\n".join(lines)


def _render_value(key: Key, value: object, source: Path | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, Path):
        # A path beside the config file is written relative to it, so the two can move together.
        base = source.absolute().parent if source else None
        value = str(value.relative_to(base) if base and value.is_absolute() and value.is_relative_to(base) else value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, ensure_ascii=False)  # a JSON string, number or bool is valid TOML


def write_terminal_config(path: Path, config: TerminalConfig, *, force: bool = False) -> None:
    """Write the file with mode 0600 from its first byte (it holds the PIN hash), atomically;
    FileExistsError when it exists and `force` is not given."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(path)
    replace_secret_file(path, render_terminal_config(config).encode("utf-8"))
