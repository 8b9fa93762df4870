"""Value types of the certificate manifest (version 2 is the native form).

Everything past the loader is one of these frozen dataclasses; no raw JSON leaves
`phoenix_certbot.manifest.load`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Source(str, Enum):
    """Which PEM of a certificate a secret, config or file carries."""

    CERT = "cert"
    CHAIN = "chain"
    FULLCHAIN = "fullchain"
    PRIVKEY = "privkey"


class ObjectKind(str, Enum):
    SECRET = "secret"  # noqa: S105 - an object kind, not a password
    CONFIG = "config"


class NotifyOn(str, Enum):
    """What a notification is sent for (`settings.notify_on`)."""

    FAILURE = "failure"
    SUCCESS = "success"
    EXPIRY = "expiry"


@dataclass(frozen=True)
class NotifyTarget:
    """One Apprise URL and where it was configured. The URL carries secrets (tokens,
    passwords): it is never shown; `origin` names it in reports and logs."""

    url: str = field(repr=False)
    origin: str  # e.g. "settings.notify_urls[0]" or "/etc/phoenix-certbot/notify-urls:3"

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "?"

    @property
    def label(self) -> str:
        return f"{self.origin} ({self.scheme})"


# Services one run updates and waits for at once: a wildcard certificate mounted by 32
# services goes in one wave (bench/RESULTS.md: 32 services took 14-17 s all at once, the
# daemon alone 13-15 s; earlier, 24 s 16 at a time, 36 s 8 at a time).
MAX_PARALLEL_UPDATES = 32


@dataclass(frozen=True)
class PortainerSettings:
    """Where Portainer's API is (`settings.portainer`); the CLI options override each field."""

    url: str | None = None
    token_file: Path | None = None
    server_name: str | None = None  # SNI; default the URL host
    ca_file: Path | None = None  # PEM bundle to trust; default the system store


@dataclass(frozen=True)
class Settings:
    certbot_live_dir: Path = Path("/etc/letsencrypt/live")
    keep_versions: int = 2
    update_timeout_s: int = 180
    max_parallel_updates: int = MAX_PARALLEL_UPDATES
    # One Docker API request; past it Docker counts as unreachable (an unknown outcome once
    # something changed). A hung request stretches a phase by at most this much.
    docker_timeout_s: float = 30.0
    state_dir: Path = Path("/var/lib/phoenix-certbot")
    # From notify_urls and notify_urls_file together.
    notify_targets: tuple[NotifyTarget, ...] = field(default=(), repr=False)
    notify_on: frozenset[NotifyOn] = frozenset({NotifyOn.FAILURE})
    portainer: PortainerSettings = field(default_factory=PortainerSettings)


@dataclass(frozen=True)
class SwarmObjectRef:
    """A Docker secret or config that a service mounts, by base name.

    The deployed object is named `<name>_<sha256[:12]>` (see `naming.versioned_name`).
    """

    kind: ObjectKind
    name: str
    source: Source
    target: str
    mode: int = 0o444
    uid: str = "0"
    gid: str = "0"


@dataclass(frozen=True)
class FileTarget:
    """A file written on this host for services that bind-mount certificates."""

    path: Path
    source: Source
    mode: int = 0o644
    owner: str | None = None  # "user" or "user:group"; None keeps the current owner


@dataclass(frozen=True)
class ServiceBinding:
    service: str
    secrets: tuple[SwarmObjectRef, ...] = ()
    configs: tuple[SwarmObjectRef, ...] = ()
    files: tuple[FileTarget, ...] = ()

    @property
    def objects(self) -> tuple[SwarmObjectRef, ...]:
        return self.secrets + self.configs

    @property
    def restart_only(self) -> bool:
        """No mounts managed: the service reads the certificate from a bind mount of the
        certificate files and is force-updated when they change (the legacy
        `docker service update --force SERVICE` case)."""
        return not self.secrets and not self.configs and not self.files


@dataclass(frozen=True)
class VerifyTarget:
    url: str
    server_name: str | None = None  # SNI; defaults to the URL host


@dataclass(frozen=True)
class CertificatePaths:
    """Where a certificate's PEM files are. `lineage` entries resolve to certbot's live/ files."""

    cert: Path
    key: Path
    chain: Path | None = None
    fullchain: Path | None = None
    lineage: Path | None = None


@dataclass(frozen=True)
class CertificateEntry:
    name: str
    sans: tuple[str, ...]
    paths: CertificatePaths
    services: tuple[ServiceBinding, ...] = ()
    verify: tuple[VerifyTarget, ...] = ()
    # Legacy only: where the files go and who owns them (kept for reporting).
    owner: str | None = None
    permissions: str | None = None
    legacy_command: str | None = None  # a post_renewal_command that was not migrated


@dataclass(frozen=True)
class Manifest:
    path: Path
    version: int
    settings: Settings
    certificates: tuple[CertificateEntry, ...]
    # Legacy keys we do not understand: (JSON path, key) pairs, reported, not fatal.
    unknown_keys: tuple[str, ...] = field(default=())

    def by_name(self, name: str) -> CertificateEntry | None:
        for entry in self.certificates:
            if entry.name == name:
                return entry
        return None

    def by_lineage(self, lineage: Path) -> tuple[CertificateEntry, ...]:
        """Entries whose lineage is `lineage`, or whose name is its last component."""
        resolved = lineage.absolute()
        return tuple(
            e
            for e in self.certificates
            if (e.paths.lineage is not None and e.paths.lineage.absolute() == resolved)
            or e.name == lineage.name
        )
