"""Content rollout on the hall server: the bundle it publishes to its terminals.

The server's content folder is `DATA_DIR/content`, laid out as a terminal's
(kiosq.content.bundle: `bundles/<version>/catalog.sqlite + manifest.json`, `active.json`).
The active bundle there is at once the server's own catalog (items.py) and the published
one, so terminals and the server's forms never disagree. Publishing installs a bundle there
(atomically, sha256 checked) and reloads the catalog; rollback swaps back to the previous
one. `kiosq server publish` and the HTTP API both come through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kiosq.content import bundle, signing
from kiosq.content.bundle import BundleError, Manifest
from kiosq.queue.items import CONTENT_DIR, ItemCatalog


class NoSuchBundle(Exception):
    """The version asked for is not on the server."""


@dataclass(frozen=True)
class Published:
    manifest: Manifest
    size: int  # bytes of the catalog file
    signature: str | None = None  # base64 Ed25519 of the hall's key over the catalog file (content/signing.py)

    def view(self) -> dict:
        m = self.manifest
        return {"version": m.version, "sha256": m.sha256, "items": m.items, "size": self.size,
                "created": m.created, "url": f"/api/content/bundles/{m.version}", "signature": self.signature}


class Rollout:
    def __init__(self, data_dir: Path, items: ItemCatalog | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.content_dir = Path(data_dir) / CONTENT_DIR
        self.items = items

    def _folder(self, version: str) -> Path:
        if not bundle.VERSION.match(version) or ".." in version:
            raise NoSuchBundle(f"{version!r} is not a bundle version")
        return self.content_dir / "bundles" / version

    def _read(self, version: str) -> Published:
        folder = self._folder(version)
        manifest = bundle.read_manifest(folder / "manifest.json")
        sig = folder / signing.SIGNATURE_FILE
        signature = sig.read_text("ascii").strip() if sig.is_file() else None
        return Published(manifest, (folder / manifest.file).stat().st_size, signature)

    def state(self) -> dict:
        return bundle.active_state(self.content_dir) if self.content_dir.is_dir() else {}

    def published(self) -> Published | None:
        version = self.state().get("version")
        if not version:
            return None
        try:
            return self._read(version)
        except (BundleError, OSError):
            return None  # damaged on disk: nothing is offered rather than a broken bundle

    def bundle_file(self, version: str) -> tuple[Path, Manifest]:
        """The catalog file of a bundle on the server, for download."""
        folder = self._folder(version)
        try:
            manifest = bundle.read_manifest(folder / "manifest.json")
        except BundleError:
            raise NoSuchBundle(f"no bundle {version} on this server") from None
        path = folder / manifest.file
        if not path.is_file():
            raise NoSuchBundle(f"no bundle {version} on this server")
        return path, manifest

    def bundles(self) -> list[dict]:
        """The bundles kept on the server (bundle.KEEP), newest version first."""
        state = self.state()
        root = self.content_dir / "bundles"
        out = []
        for folder in sorted(root.iterdir() if root.is_dir() else (), key=lambda p: p.name, reverse=True):
            if folder.name.startswith(".") or not folder.is_dir():
                continue
            try:
                view = self._read(folder.name).view()
            except (BundleError, OSError, NoSuchBundle):
                continue
            out.append({**view, "published": folder.name == state.get("version"),
                        "previous": folder.name == state.get("previous")})
        return out

    def publish_manifest(self, manifest_path: Path) -> Manifest:
        """Install a bundle built by `kiosq content build`, sign it with the hall's key (the
        terminals install nothing else) and publish it."""
        manifest = bundle.install(Path(manifest_path), self.content_dir)
        path, _ = self.bundle_file(manifest.version)  # the file exactly as terminals download it
        folder = path.parent
        signature = signing.sign(signing.hall_key(self.data_dir), path)
        (folder / signing.SIGNATURE_FILE).write_text(signature + "\n", "ascii")
        self.reload()
        return manifest

    def signature_of(self, version: str) -> str | None:
        """The hall's signature of a bundle on the server (None: published before signing)."""
        return self._read(version).signature

    def publish_version(self, version: str) -> Manifest:
        """Publish a bundle already on the server (one kept from before)."""
        folder = self._folder(version)
        if not (folder / "manifest.json").is_file():
            raise NoSuchBundle(f"no bundle {version} on this server; copy it here with `kiosq server publish "
                               "MANIFEST`")
        return self.publish_manifest(folder / "manifest.json")

    def rollback(self) -> str:
        version = bundle.rollback(self.content_dir)
        self.reload()
        return version

    def reload(self) -> None:
        if self.items is not None:
            self.items.reload()

    def follow(self) -> bool:
        """Reload the catalog if another process (`kiosq server publish`) changed the
        published bundle; returns whether it did."""
        if self.items is None:
            return False
        try:
            version = self.state().get("version")
        except BundleError:
            return False
        source = f"bundle {version}" if version else "sample"
        if source == self.items.source:
            return False
        self.items.reload()
        return True

