"""File-system adapter: read a manifest entry's PEM files into a `CertificateMaterial`.

Two layouts: a certbot lineage (live/NAME/*.pem symlinks into archive/NAME/*N.pem) and
explicit paths (an internal CA's files). Parsing and every check live in `checks`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from phoenix_certbot.certs import checks
from phoenix_certbot.certs.model import CertificateMaterial
from phoenix_certbot.errors import CertFileMissing, CertificateError, ChainBroken
from phoenix_certbot.manifest.model import CertificateEntry

logger = logging.getLogger(__name__)

_KINDS = ("cert", "chain", "fullchain", "privkey")
_ARCHIVE_NAME = re.compile(r"^(cert|chain|fullchain|privkey)(\d+)\.pem$")

# Indirection so tests can stand in for certbot finishing its update between attempts.
_sleep = time.sleep


@dataclass(frozen=True)
class _Files:
    """Which files to read; `chain`/`fullchain` are optional sources of the chain."""

    cert: Path
    key: Path
    chain: Path | None
    fullchain: Path | None


def load_material(
    entry: CertificateEntry, *, attempts: int = 5, delay_s: float = 0.2
) -> CertificateMaterial:
    """Read (not check) the entry's certificate, chain and key; see `checks.check_material`.

    For a lineage, `attempts` and `delay_s` bound how long we wait for certbot to finish
    re-pointing its live/ links when they are caught half-updated.
    """
    lineage = entry.paths.lineage
    if lineage is not None:
        files = _resolve_lineage(lineage, attempts, delay_s)
    else:
        paths = entry.paths
        files = _Files(paths.cert, paths.key, paths.chain, paths.fullchain)
    return _assemble(entry.name, files)


def _read(path: Path) -> bytes:
    """The file's bytes, capped just past Docker's limit so a huge file is not slurped."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            return handle.read(checks.MAX_PAYLOAD_BYTES + 1)
    except FileNotFoundError:
        raise CertFileMissing(name, "file not found") from None
    except IsADirectoryError:
        raise CertFileMissing(name, "is a directory, not a file") from None
    except OSError as exc:
        raise CertFileMissing(name, f"cannot read: {exc.strerror or type(exc).__name__}") from None


def _assemble(name: str, files: _Files) -> CertificateMaterial:
    cert_file = str(files.cert)
    certs = checks.parse_certificates(_read(files.cert), cert_file)
    leaf = certs[0]
    # Every place that states the chain, in order of preference; all must agree.
    sources: list[tuple[Path, tuple[x509.Certificate, ...]]] = []
    if files.chain is not None:
        sources.append((files.chain, checks.parse_chain(_read(files.chain), str(files.chain))))
    if files.fullchain is not None:
        full = checks.parse_certificates(_read(files.fullchain), str(files.fullchain))
        if full[0] != leaf:
            raise ChainBroken(str(files.fullchain), f"does not start with the leaf of {cert_file}")
        sources.append((files.fullchain, full[1:]))
    if len(certs) > 1:
        sources.append((files.cert, certs[1:]))
    chain_path, chain = sources[0] if sources else (None, ())
    for other_path, other in sources[1:]:
        if other != chain:
            raise ChainBroken(str(other_path), f"chain differs from the one in {chain_path}")
    return CertificateMaterial(
        name=name,
        cert_path=files.cert,
        key_path=files.key,
        cert_pem=checks.to_pem([leaf]),
        chain_pem=checks.to_pem(chain),
        key_pem=_read(files.key),
        info=checks.info_of(leaf),
        chain_path=chain_path if chain else None,
    )


@dataclass(frozen=True)
class _Link:
    kind: str
    link: Path  # live/NAME/<kind>.pem
    target: Path  # fully resolved: the file we read
    archive: Path  # the directory the live link points into
    version: int | None  # N of archive/NAME/<kind>N.pem; None when not certbot-named
    present: bool  # the live/ entry exists (possibly as a dangling link)
    readable: bool  # the resolved target is a regular file


def _resolve_link(kind: str, link: Path) -> _Link:
    # The version is read from the live link's own target, not the final file: with
    # --reuse-key certbot makes archive/privkeyN.pem a link to an older privkeyM.pem.
    try:
        first_hop = Path(os.path.normpath(link.parent / link.readlink()))
    except OSError:  # not a symlink (copied files), or unlinked by certbot just now
        first_hop = link
    match = _ARCHIVE_NAME.match(first_hop.name)
    target = Path(os.path.realpath(link))
    return _Link(
        kind=kind,
        link=link,
        target=target,
        archive=Path(os.path.realpath(first_hop.parent)),
        version=int(match.group(2)) if match and match.group(1) == kind else None,
        present=os.path.lexists(link),
        readable=target.is_file(),
    )


def _resolve(lineage: Path) -> dict[str, _Link]:
    """One snapshot of the live/ links; later decisions use it, not the disk."""
    return {kind: _resolve_link(kind, lineage / f"{kind}.pem") for kind in _KINDS}


def _problem(lineage: Path, links: dict[str, _Link]) -> CertificateError | None:
    """Why these resolved links cannot be read as one version; None when they can."""
    for link in links.values():
        required = link.kind in ("cert", "privkey")
        if (required or link.present) and not link.readable:
            why = f"link target {link.target} not found" if link.present else "file not found"
            return CertFileMissing(str(link.link), why)
    usable = [link for link in links.values() if link.readable]
    if not any(link.kind in ("chain", "fullchain") for link in usable):
        return CertFileMissing(str(lineage / "chain.pem"), "neither chain.pem nor fullchain.pem")
    # Same archive directory and the same N for every file, or we would mix versions.
    if len({(link.archive, link.version) for link in usable}) > 1:
        seen = ", ".join(f"{link.kind}={link.version}" for link in usable)
        return CertificateError(
            str(lineage),
            f"lineage files point at different versions ({seen}); certbot may be "
            "updating it, or the lineage is damaged",
        )
    return None


def _resolve_lineage(lineage: Path, attempts: int, delay_s: float) -> _Files:
    """Resolve the live/ links once per attempt until they agree, then read those targets.

    certbot re-points the links one at a time (unlink, then symlink), so a reader can
    catch a mix of versions or a missing link; archive files never change once written.
    """
    if not lineage.is_dir():
        # Nothing to wait for: certbot never removes the live directory while updating.
        raise CertFileMissing(str(lineage), "certbot lineage directory not found")
    links = _resolve(lineage)
    problem = _problem(lineage, links)
    for attempt in range(1, attempts):
        if problem is None:
            break
        logger.debug("lineage %s not settled (attempt %d): %s", lineage, attempt, problem)
        _sleep(delay_s)
        links = _resolve(lineage)
        problem = _problem(lineage, links)
    if problem is not None:
        raise problem
    readable = {kind: link.target for kind, link in links.items() if link.readable}
    return _Files(
        readable["cert"], readable["privkey"], readable.get("chain"), readable.get("fullchain")
    )
