"""Vendor the front-end libraries the UI serves itself (no CDN: installs may run offline).

Each asset is a pinned npm package version with the registry's sha512 integrity. The tarball comes from
the npm registry through `npm pack` when npm is installed, otherwise straight from the registry's
tarball URL; either way the integrity is checked before anything is extracted into app/static/vendor/.
Run by `make install` (and so by `make run` / `make test`); a no-op when the files are already there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "app" / "static" / "vendor"
TEST_VENDOR_DIR = ROOT / "tests" / "ui" / "vendor"  # test-only libraries: never served by the app


@dataclass(frozen=True)
class NpmAsset:
    package: str
    version: str
    integrity: str  # the registry's dist.integrity ("sha512-<base64>")
    files: dict[str, str]  # path inside the package -> file name under `target`
    target: Path = VENDOR_DIR

    @property
    def tarball_url(self) -> str:
        return f"https://registry.npmjs.org/{self.package}/-/{self.package}-{self.version}.tgz"


ASSETS = (
    NpmAsset(
        package="chart.js",
        version="4.5.1",
        integrity="sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5tVtevcBtIdICNWqlq5+E8/Pw==",
        files={"dist/chart.umd.min.js": "chart.umd.min.js", "LICENSE.md": "chart.js.LICENSE.md"},
    ),
    # the accessibility checker the browser tests inject into every page type (WCAG 2.1 AA)
    NpmAsset(
        package="axe-core",
        version="4.14.1",
        integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        files={"axe.min.js": "axe.min.js", "LICENSE": "axe-core.LICENSE"},
        target=TEST_VENDOR_DIR,
    ),
)


def _fetch(asset: NpmAsset) -> bytes:
    npm = shutil.which("npm")
    if npm:
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run(
                [npm, "pack", f"{asset.package}@{asset.version}", "--silent"],
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            tarballs = list(Path(tmp).glob("*.tgz"))
            if done.returncode == 0 and tarballs:
                return tarballs[0].read_bytes()
            print(f"npm pack failed ({done.stderr.strip()[:200]}); using the registry URL", file=sys.stderr)
    with urllib.request.urlopen(asset.tarball_url, timeout=60) as response:
        body: bytes = response.read()
        return body


def _check_integrity(asset: NpmAsset, tarball: bytes) -> None:
    algorithm, _, expected = asset.integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode()
    if actual != expected:
        raise SystemExit(f"{asset.package}@{asset.version}: integrity mismatch ({algorithm}-{actual})")


def vendor(asset: NpmAsset, target: Path | None = None) -> list[Path]:
    target = target or asset.target
    wanted = [target / name for name in asset.files.values()]
    stamp = target / f".{asset.package}-{asset.version}"
    if stamp.exists() and all(p.exists() for p in wanted):
        return wanted
    tarball = _fetch(asset)
    _check_integrity(asset, tarball)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for inner, name in asset.files.items():
            member = archive.extractfile(f"package/{inner}")
            if member is None:
                raise SystemExit(f"{asset.package}@{asset.version} has no {inner}")
            (target / name).write_bytes(member.read())
    for old in target.glob(f".{asset.package}-*"):
        old.unlink()
    stamp.touch()
    return wanted


def main() -> None:
    for asset in ASSETS:
        paths = vendor(asset)
        print(f"vendored {asset.package}@{asset.version}: {', '.join(p.name for p in paths)}")


if __name__ == "__main__":
    main()
