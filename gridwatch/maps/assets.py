"""The map pages' third-party files: fetched from the npm registry at install time, pinned
by version and checked by hash (assets.json), kept under maps/vendor/ (not committed), and
served by gridwatch itself so the pages work on a closed network.

    python -m gridwatch.maps.assets      # what `make assets` runs
"""

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

MANIFEST = Path(__file__).with_name("assets.json")
VENDOR = Path(__file__).with_name("vendor")
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")


def packages() -> dict:
    return {k: v for k, v in json.loads(MANIFEST.read_text()).items() if not k.startswith("_")}


def present() -> bool:
    """True when every file of the manifest is in place (and the manifest unchanged since)."""
    stamp = VENDOR / ".manifest"
    return stamp.exists() and stamp.read_text() == MANIFEST.read_text()


def fetch(progress=print) -> None:
    """Download, verify and unpack every package; raises if a hash does not match."""
    for name, spec in packages().items():
        url = f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{spec['version']}.tgz"
        progress(f"fetching {name}@{spec['version']}")
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
        algorithm, expected = spec["integrity"].split("-", 1)
        actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
        if actual != expected:
            raise RuntimeError(f"{name}@{spec['version']}: the registry's file does not match the pinned hash")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                target = _target(member.name, spec["files"])
                if target is None or not member.isfile():
                    continue
                path = VENDOR / target
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())
        for target, (old, new) in spec.get("rewrite", {}).items():
            path = VENDOR / target
            path.write_text(path.read_text().replace(old, new))
    (VENDOR / ".manifest").write_text(MANIFEST.read_text())


def _target(member: str, files: dict[str, str]) -> str | None:
    for source, target in files.items():
        if source.endswith("/") and member.startswith(source):
            return target + member[len(source):]
        if member == source:
            return target
    return None


if __name__ == "__main__":
    if present() and "--force" not in sys.argv:
        print("map assets are in place")
    else:
        fetch()
