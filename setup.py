"""The wheel is the whole product: besides the code, the migrations, the page templates and
the demo county's boundary files (package data, see pyproject.toml), building it fetches the
map assets pinned in gridwatch/maps/assets.json, checks each against its hash, and puts them
into the wheel's gridwatch/maps/vendor/. A hash that does not match fails the build, naming
the package. An editable install (a checkout) gets them from `make assets` instead."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        sys.path.insert(0, str(ROOT))
        from gridwatch.maps import assets

        try:
            assets.fetch(Path(self.build_lib) / "gridwatch" / "maps" / "vendor", progress=self.announce)
        except assets.AssetError as exc:
            sys.exit(f"error: cannot build gridwatch: {exc}")


setup(cmdclass={"build_py": BuildWithAssets})
