"""The map pages' third-party files: Leaflet and its plugins, Swagger UI. Pinned by version
and hash in assets.json, fetched from the npm registry, checked, and unpacked into the
package's vendor/ folder, which gridwatch serves itself so the pages work on a closed network.

Never committed: a checkout fetches them with `make assets` (`python -m gridwatch.maps.assets`),
and building the wheel (setup.py) fetches them into the wheel, so an installed gridwatch
carries them. Downloaded tarballs are kept in a cache (~/.cache/gridwatch/npm) and checked
against their hash every time they are used.
"""

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

# Found through the package, so an installed gridwatch serves its own copy.
HERE = Path(str(files("gridwatch.maps")))
MANIFEST = HERE / "assets.json"
VENDOR = HERE / "vendor"
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gridwatch" / "npm"


class AssetError(RuntimeError):
    """A package could not be fetched, or its file does not match the pinned hash."""


def packages(manifest: Path = MANIFEST) -> dict:
    return {k: v for k, v in json.loads(manifest.read_text()).items() if not k.startswith("_")}


def present(vendor: Path = VENDOR, manifest: Path = MANIFEST) -> bool:
    """True when every file of the manifest is in place (and the manifest unchanged since)."""
    stamp = vendor / ".manifest"
    return stamp.exists() and stamp.read_text() == manifest.read_text()


def fetch(vendor: Path = VENDOR, manifest: Path = MANIFEST, progress: Callable[[str], None] = print) -> None:
    """Download (or take from the cache), verify and unpack every package into `vendor`;
    raises AssetError naming the package if its file does not match the pinned hash."""
    for name, spec in packages(manifest).items():
        progress(f"map assets: {name}@{spec['version']}")
        with tarfile.open(fileobj=io.BytesIO(_tarball(name, spec)), mode="r:gz") as tar:
            for member in tar.getmembers():
                target = _target(member.name, spec["files"])
                if target is None or not member.isfile():
                    continue
                path = vendor / target
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())
        for target, (old, new) in spec.get("rewrite", {}).items():
            path = vendor / target
            path.write_text(path.read_text().replace(old, new))
    (vendor / ".manifest").write_text(manifest.read_text())


def _tarball(name: str, spec: dict) -> bytes:
    """The package's tarball, checked against its pinned hash: from the cache if it holds a
    good copy, else from the registry (and then cached)."""
    filename = f"{name.split('/')[-1]}-{spec['version']}.tgz"
    cached = CACHE / name / filename
    if cached.exists() and _matches(cached.read_bytes(), spec):
        return cached.read_bytes()
    url = f"{REGISTRY}/{name}/-/{filename}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
    except OSError as exc:
        raise AssetError(f"{name}@{spec['version']}: cannot fetch {url} ({exc}); set NPM_REGISTRY to a "
                         f"registry this machine reaches") from exc
    if not _matches(data, spec):
        raise AssetError(f"{name}@{spec['version']}: the file from {url} does not match the hash pinned in "
                         f"assets.json; refusing to use it")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


def _matches(data: bytes, spec: dict) -> bool:
    algorithm, expected = spec["integrity"].split("-", 1)
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == expected


def _target(member: str, targets: dict[str, str]) -> str | None:
    for source, target in targets.items():
        if source.endswith("/") and member.startswith(source):
            return target + member[len(source):]
        if member == source:
            return target
    return None


if __name__ == "__main__":
    if present() and "--force" not in sys.argv:
        print("map assets are in place")
    else:
        try:
            fetch()
        except AssetError as exc:
            sys.exit(f"error: {exc}")
