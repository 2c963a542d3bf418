"""`kiosq content`: the item-guide catalog (import, export, search) and its bundles for
terminals (build, verify, install, rollback). Catalog errors become one line and exit 1."""

from __future__ import annotations

import functools
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from kiosq.provisioning.options import CONTEXT, DEFAULT_DATA_DIR

DEFAULT_CATALOG = DEFAULT_DATA_DIR / "catalog.sqlite"
db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_CATALOG,
                         show_default=True, help="The catalog database.")
P = ParamSpec("P")
R = TypeVar("R")


def _catalog_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Catalog and bundle problems as clear lines and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from kiosq.content.bundle import BundleError
        from kiosq.content.model import CatalogError

        try:
            return fn(*args, **kwargs)
        except CatalogError as exc:
            for line in exc.problems[:-1]:
                click.echo(line, err=True)
            raise click.ClickException(exc.problems[-1] + (f"  ({len(exc.problems)} problems)"
                                                           if len(exc.problems) > 1 else "")) from None
        except BundleError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"the catalog database cannot be used ({exc}); pass another --db") from None
        except OSError as exc:
            raise click.ClickException(f"{exc.filename or 'a file'}: {exc.strerror or exc}; check the path") from None
    return wrapper


@click.group(context_settings=CONTEXT)
def content() -> None:
    """The item-guide catalog (办事指南): import, export, search, bundles for terminals.

    \b
    Example:
      kiosq content import content/data --db data/catalog.sqlite
      kiosq content search sfz
    """


@content.command("import", context_settings=CONTEXT)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@db_option
@_catalog_errors
def content_import(path: Path, db: Path) -> None:
    """Check a catalog (a JSON file or a folder of them) and make it the catalog in DB.

    Every problem is reported with the item's code and field; a file with any problem
    imports nothing. The format is docs/catalog-format.md.

    \b
    Example:
      kiosq content import content/data --db data/catalog.sqlite
    """
    from kiosq.content.catalog import load_files, write_catalog

    items = load_files(path)
    write_catalog(db, items)
    click.echo(f"imported {len(items)} items from {path} into {db}")


@content.command("export", context_settings=CONTEXT)
@db_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@_catalog_errors
def content_export(db: Path, out: Path | None) -> None:
    """Write the catalog back in the import format (importing it again gives the same catalog).

    \b
    Example:
      kiosq content export --db data/catalog.sqlite --out catalog.json
    """
    from kiosq.content.catalog import export_catalog

    text = json.dumps(export_catalog(db), ensure_ascii=False, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@content.command("search", context_settings=CONTEXT)
@click.argument("query")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The catalog database (default: data/catalog.sqlite, else the sample catalog).")
@click.option("--department", default=None, help="Only this department, e.g. 公安局.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print [{code, name, department, score}] as JSON.")
@_catalog_errors
def content_search(query: str, db: Path | None, department: str | None, limit: int, as_json: bool) -> None:
    """Search item guides by Chinese, pinyin, initials, English or everyday words.

    \b
    Example:
      kiosq content search sfz
      kiosq content search "shen fen zheng" --json
      kiosq content search 户口 --department 公安局
    """
    from kiosq.content.search import Searcher, normalise

    if not normalise(query)[0]:
        raise click.UsageError("give something to search for, e.g. sfz, 身份证 or passport")
    with _catalog_db(db) as path, Searcher(path) as searcher:
        hits = searcher.search(query, department=department, limit=limit)
    if as_json:
        click.echo(json.dumps([{"code": h.code, "name": h.name, "department": h.department, "score": h.score}
                               for h in hits], ensure_ascii=False))
        return
    if not hits:
        click.echo(f"nothing found for {query!r}", err=True)
    for h in hits:
        click.echo(f"{h.score:>3}  {h.code:<12} {h.name}  ({h.department})")


@content.command("build", context_settings=CONTEXT)
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path), default=None,
              help="Catalog JSON file or folder (default: the catalog in --db, else the sample catalog).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A catalog database to bundle.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("bundles"), show_default=True,
              help="Folder for the bundle.")
@_catalog_errors
def content_build(source: Path | None, db: Path | None, out: Path) -> None:
    """Build a versioned content bundle: the catalog database and its manifest (sha256).

    \b
    Example:
      kiosq content build --from content/data --out bundles
    """
    from kiosq.content.bundle import build
    from kiosq.content.catalog import SAMPLE, load_files, read_items

    items = read_items(db) if db is not None and source is None else load_files(source or SAMPLE)
    manifest = build(items, out)
    click.echo(str(manifest))


@content.command("verify", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_catalog_errors
def content_verify(manifest: Path) -> None:
    """Check a bundle: its database matches the manifest's sha256 and item count.

    \b
    Example:
      kiosq content verify bundles/catalog-20261122.101500-1a2b3c4d.json
    """
    from kiosq.content.bundle import verify

    m = verify(manifest)
    click.echo(f"ok: version {m.version}, {m.items} items, sha256 {m.sha256}")


@content.command("install", context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--content-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The terminal's content folder.")
@click.option("--signing-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The hall's signing key (an enrolled terminal's [content] signing_key): install only a bundle "
                   "it signed, its signature in MANIFEST's .sig beside it (`kiosq server publish` writes it).")
@_catalog_errors
def content_install(manifest: Path, content_dir: Path, signing_key: Path | None) -> None:
    """Install a bundle into a terminal's content folder (atomic; the previous stays for rollback).

    \b
    Example:
      kiosq content install bundles/catalog-20261122.101500-1a2b3c4d.json --content-dir /var/lib/kiosq/content
      kiosq content install /media/usb/catalog-20261122.101500-1a2b3c4d.json --content-dir /var/lib/kiosq/content \\
          --signing-key /etc/kiosq/hall-signing.pub
    """
    from kiosq.content import signing
    from kiosq.content.bundle import install, read_manifest

    if signing_key is not None:
        sig_file = manifest.with_suffix(".sig")
        try:
            key = signing_key.read_text("ascii").strip()
            signature = sig_file.read_text("ascii").strip() if sig_file.is_file() else None
            signing.verify(key, manifest.parent / read_manifest(manifest).file, signature)
        except OSError as exc:
            raise click.ClickException(f"cannot read {exc.filename} ({exc.strerror})") from None
        except signing.SigningError as exc:
            raise click.ClickException(f"{manifest}: {exc}; nothing was installed, the active bundle stays") from None
    m = install(manifest, content_dir)
    click.echo(f"active: {m.version} ({m.items} items) in {content_dir}")


@content.command("rollback", context_settings=CONTEXT)
@click.option("--content-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The terminal's content folder.")
@_catalog_errors
def content_rollback(content_dir: Path) -> None:
    """Go back to the bundle that was active before the last install.

    \b
    Example:
      kiosq content rollback --content-dir /var/lib/kiosq/content
    """
    from kiosq.content.bundle import rollback

    click.echo(f"active: {rollback(content_dir)} in {content_dir}")


@contextmanager
def _catalog_db(db: Path | None) -> Iterator[Path]:
    """The catalog to read: --db, else data/catalog.sqlite, else the sample catalog
    imported into a temporary file."""
    if db is not None or DEFAULT_CATALOG.is_file():
        yield db or DEFAULT_CATALOG
        return
    from kiosq.content.catalog import SAMPLE, load_files, write_catalog

    with tempfile.TemporaryDirectory(prefix="kiosq-catalog-") as tmp:
        path = Path(tmp) / "catalog.sqlite"
        write_catalog(path, load_files(SAMPLE))
        yield path
