"""The content rollout on a terminal: when the hall server publishes a bundle other than the
one installed here, a daemon thread downloads its catalog (GET /api/content/bundles/{v})
into a `.partial` file, resuming with an HTTP Range after an interruption, checks its
sha256, and installs it atomically into the content folder (kiosq.content.bundle.install:
the old bundle stays active until the new one is whole). The app then swaps its catalog on
the UI thread, at once or, if a citizen is mid-session, when the session ends.

An interrupted or damaged download changes nothing: the old bundle stays in use, and the
next offer (the next heartbeat) resumes where the download stopped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
import urllib3

from kiosq.content import bundle, signing
from kiosq.content.bundle import BundleError, Manifest
from kiosq.content.model import FORMAT
from kiosq.kiosk.hall_client import HallClient, verify_for
from kiosq.kiosk.worker import Worker

log = logging.getLogger(__name__)

DOWNLOADS = ".downloads"  # inside the content folder: on the same file system as bundles/
CHUNK = 1 << 16
TIMEOUT = (5.0, 30.0)  # connect, and each read: a bundle is megabytes on a hall network


class UpdateError(Exception):
    """A bundle could not be taken this time; str() says why (the old one stays in use)."""


def installed_version(content_dir: Path) -> str | None:
    try:
        return bundle.active_state(content_dir).get("version")
    except BundleError:
        return None


def content_identity(
    catalog: Path, catalog_db: Path | None = None, files: Path | None = None
) -> tuple[str, str | None]:
    """What a heartbeat says this kiosk shows: (version, sha256) of the bundle when `catalog`
    is an installed bundle's database, else the name of the catalog database (`catalog_db`)
    or of the folder of catalog files (`files`) it was built from, else "sample"."""
    catalog = Path(catalog)
    if catalog.parent.parent.name == "bundles" and (catalog.parent / "manifest.json").is_file():
        try:
            manifest = bundle.read_manifest(catalog.parent / "manifest.json")
            return manifest.version, manifest.sha256
        except BundleError:
            return catalog.parent.name[:64], None
    if catalog_db is not None:
        return Path(catalog_db).name[:64], None
    return (Path(files).name[:64] or "files", None) if files is not None else ("sample", None)


class Updater(Worker):
    """Takes bundles the server offers into `content_dir`. `offer(content)` with the
    heartbeat's `content` (the published bundle's {version, sha256, size, items, created,
    url}) wakes the thread; `installed(manifest, catalog_path)` is called once a bundle is
    installed, `failed(text)` when a try did not finish. Callbacks run on this thread."""

    name = "content-updater"

    def __init__(self, client: HallClient, content_dir: Path, installed: Callable[[Manifest, Path], None],
                 failed: Callable[[str], None], signing_key: Path | None = None) -> None:
        super().__init__(None)  # it works when offered a bundle, not on a clock
        self.client, self.content_dir = client, Path(content_dir)
        self.installed, self.failed = installed, failed
        self.signing_key = signing_key  # the hall's public key (kiosq enroll wrote it): only its bundles go in
        self._offer: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.verify = verify_for(client.base_url, client.ca_file)  # the hall CA, as the client's
        self._session.trust_env = False

    def offer(self, content: dict[str, Any] | None) -> None:
        """The server publishes `content` (None: nothing): take it if it is not installed."""
        if not isinstance(content, dict) or not isinstance(content.get("version"), str):
            return
        if content["version"] == installed_version(self.content_dir):
            return
        with self._lock:
            self._offer = dict(content)
        self.wake()

    def step(self) -> None:
        with self._lock:
            offer, self._offer = self._offer, None
        if offer is None:
            return
        try:
            manifest = self.take(offer)
        except UpdateError as exc:
            log.warning("content %s not taken: %s", offer.get("version"), exc)
            self.call(self.failed, str(exc))
            return
        except Exception as exc:  # a bug here must not end the rollout for good
            log.exception("content %s not taken", offer.get("version"))
            self.call(self.failed, type(exc).__name__)
            return
        self.call(lambda m: self.installed(m, bundle.active_catalog(self.content_dir)), manifest)

    def _hall_key(self) -> str:
        try:
            if self.signing_key is None:
                raise OSError("no [content] signing_key in the config")
            return self.signing_key.read_text("ascii").strip()
        except OSError as exc:
            raise signing.SigningError(f"this terminal has no hall signing key ({exc}); enroll it again with "
                                       "`kiosq enroll` so that it learns the hall's key") from None

    def finished(self) -> None:
        self._session.close()

    # --- one bundle

    def take(self, offer: dict[str, Any]) -> Manifest:
        """Download, check and install the offered bundle; UpdateError if any step fails."""
        version, sha256, size = offer.get("version"), offer.get("sha256"), offer.get("size")
        if not (isinstance(version, str) and bundle.VERSION.match(version) and ".." not in version
                and isinstance(sha256, str) and bundle.SHA256.match(sha256) and isinstance(size, int)):
            raise UpdateError(f"the server's manifest is not usable: {offer!r:.200}")
        folder = self.content_dir / DOWNLOADS
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.iterdir():  # an older version's leftovers
            if not stale.name.startswith(f"catalog-{version}."):
                stale.unlink(missing_ok=True)
        partial = folder / f"catalog-{version}.sqlite.partial"
        self.download(version, partial, size)
        if bundle.sha256_of(partial) != sha256:
            partial.unlink()
            raise UpdateError(f"bundle {version}: the download's sha256 is not the manifest's; "
                              "it starts over next time")
        try:
            signing.verify(self._hall_key(), partial, offer.get("signature"))
        except signing.SigningError as exc:
            partial.unlink()
            raise UpdateError(f"bundle {version} refused, the active bundle stays: {exc}") from None
        db = partial.with_name(f"catalog-{version}.sqlite")
        os.replace(partial, db)
        manifest_path = folder / f"catalog-{version}.json"
        manifest_path.write_text(json.dumps({"format": FORMAT, "version": version, "created": offer.get("created", ""),
                                             "items": offer.get("items"), "sha256": sha256, "file": db.name}),
                                 encoding="utf-8")
        try:
            manifest = bundle.install(manifest_path, self.content_dir)
        except BundleError as exc:
            raise UpdateError(str(exc)) from None
        finally:
            db.unlink(missing_ok=True)
            manifest_path.unlink(missing_ok=True)
        log.info("content %s installed (%d items)", manifest.version, manifest.items)
        return manifest

    def download(self, version: str, partial: Path, size: int) -> None:
        """Fetch the bundle's bytes into `partial`, continuing what is already there."""
        have = partial.stat().st_size if partial.exists() else 0
        if have > size:
            partial.unlink()
            have = 0
        if have == size:
            return
        headers = {"Authorization": f"Bearer {self.client.token}"} if self.client.token else {}
        if have:
            headers["Range"] = f"bytes={have}-"
        url = f"{self.client.base_url}/api/content/bundles/{version}"
        try:
            with self._session.get(url, headers=headers, stream=True, timeout=TIMEOUT) as resp:
                if resp.status_code == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
                    mode = "ab"
                elif resp.status_code == 200:
                    mode = "wb"  # the whole file (a server that ignores Range, or a fresh start)
                else:
                    raise UpdateError(f"bundle {version}: the server answered HTTP {resp.status_code}"
                                      f"{_detail(resp)}")
                with open(partial, mode) as out:
                    try:
                        # read1: what has arrived, so the bytes before a dropped connection are kept
                        for chunk in iter(lambda: resp.raw.read1(CHUNK), b""):
                            out.write(chunk)
                            if self.stopped:
                                break
                    finally:
                        out.flush()
                        os.fsync(out.fileno())
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            got = partial.stat().st_size if partial.exists() else 0
            raise UpdateError(f"bundle {version}: download interrupted at {got} of {size} bytes "
                              f"({type(exc).__name__}); it resumes next time") from None
        got = partial.stat().st_size
        if got != size:
            raise UpdateError(f"bundle {version}: got {got} of {size} bytes; it resumes next time")


def _detail(resp: requests.Response) -> str:
    try:
        return f": {resp.json().get('detail')}"
    except (ValueError, AttributeError):
        return ""
