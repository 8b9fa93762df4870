"""Manifest objects for the compose lint tests, built directly (no manifest loader)."""

from __future__ import annotations

from pathlib import Path

from phoenix_certbot.manifest.model import (
    CertificateEntry,
    CertificatePaths,
    Manifest,
    ObjectKind,
    ServiceBinding,
    Settings,
    Source,
    SwarmObjectRef,
    VerifyTarget,
)

CORPUS = Path(__file__).parent / "corpus"
REPO = Path(__file__).parents[2]
PORTAINER_STACK = REPO / "manifests" / "portainer-stack.yml"
PORTAINER_URL = "https://10.0.0.111:9443/api/system/status"
PORTAINER_ENV = {
    "PORTAINER_SSLCERT": "portainer.sslcert_0123456789ab",
    "PORTAINER_SSLKEY": "portainer.sslkey_0123456789ab",
}


def secret(
    name: str, source: Source, target: str | None = None, mode: int = 0o444
) -> SwarmObjectRef:
    return SwarmObjectRef(ObjectKind.SECRET, name, source, target or name, mode)


def config(name: str, source: Source, target: str) -> SwarmObjectRef:
    return SwarmObjectRef(ObjectKind.CONFIG, name, source, target)


def entry(
    name: str,
    bindings: tuple[ServiceBinding, ...],
    urls: tuple[str, ...] = (),
) -> CertificateEntry:
    return CertificateEntry(
        name=name,
        sans=(f"{name}.example.com",),
        paths=CertificatePaths(
            cert=Path(f"/etc/letsencrypt/live/{name}/cert.pem"),
            key=Path(f"/etc/letsencrypt/live/{name}/privkey.pem"),
            lineage=Path(f"/etc/letsencrypt/live/{name}"),
        ),
        services=bindings,
        verify=tuple(VerifyTarget(url) for url in urls),
    )


def manifest(*entries: CertificateEntry) -> Manifest:
    return Manifest(Path("/etc/phoenix-certbot/manifest.json"), 2, Settings(), entries)


def portainer_binding(service: str = "portainer_portainer") -> ServiceBinding:
    return ServiceBinding(
        service,
        secrets=(
            secret("portainer.sslcert", Source.FULLCHAIN),
            secret("portainer.sslkey", Source.PRIVKEY, mode=0o400),
        ),
    )


def portainer_manifest(service: str = "portainer_portainer", url: str = PORTAINER_URL) -> Manifest:
    """Entry `portainer`: stack `portainer`, service `portainer`, verified on 10.0.0.111:9443."""
    return manifest(entry("portainer", (portainer_binding(service),), (url,)))


def web_manifest(service: str = "web_web", url: str = "https://10.0.0.21/") -> Manifest:
    """Entry `web`: a plain HTTPS service, verified on port 443."""
    binding = ServiceBinding(
        service,
        secrets=(
            secret("web.fullchain", Source.FULLCHAIN, "/etc/nginx/fullchain.pem"),
            secret("web.privkey", Source.PRIVKEY, "/etc/nginx/privkey.pem", 0o400),
        ),
    )
    return manifest(entry("web", (binding,), (url,)))
