"""`phoenix-cert manifest check|migrate`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from phoenix_certbot.cli.options import json_option, manifest_option
from phoenix_certbot.errors import EXIT_BAD_INPUT, CertificateError, UsageError
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.migrate import migrate as migrate_manifest
from phoenix_certbot.manifest.model import CertificateEntry


@click.group()
def manifest() -> None:
    """Check or migrate the certificate manifest."""


def _certificate_report(entry: CertificateEntry, now: dt.datetime) -> dict[str, Any]:
    from phoenix_certbot.certs import check_material, load_material

    try:
        material = load_material(entry)
        check_material(material, entry.sans, now)
    except CertificateError as exc:
        return {"ok": False, "error": str(exc), "check": exc.check}
    info = material.info
    return {
        "ok": True,
        "not_after": info.not_after.isoformat(),
        "days_left": round(info.days_left(now), 1),
        "sha256": info.sha256,
        "issuer": info.issuer,
    }


@manifest.command()
@manifest_option
@click.option(
    "--no-certs", is_flag=True, help="Only validate the manifest; do not read certificates."
)
@json_option
@click.pass_context
def check(ctx: click.Context, manifest_path: str | None, no_certs: bool, as_json: bool) -> None:
    """Validate the manifest and check every certificate it points to."""
    path = manifest_load.locate(manifest_path)
    loaded = manifest_load.load(path)
    now = dt.datetime.now(dt.timezone.utc)
    rows: list[dict[str, Any]] = []
    for entry in loaded.certificates:
        row: dict[str, Any] = {
            "name": entry.name,
            "sans": list(entry.sans),
            "source": str(entry.paths.lineage or entry.paths.cert),
            "services": [b.service for b in entry.services],
            "verify": [v.url for v in entry.verify],
        }
        if entry.legacy_command:
            row["legacy_command"] = "not migrated (runs only with --run-legacy-commands)"
        if not no_certs:
            row["certificate"] = _certificate_report(entry, now)
        rows.append(row)
    failed = [r for r in rows if not r.get("certificate", {"ok": True})["ok"]]
    if as_json:
        doc = {
            "manifest": str(path),
            "version": loaded.version,
            "ok": not failed,
            "certificates": rows,
            "unknown_keys": list(loaded.unknown_keys),
        }
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"{path}: version {loaded.version}, {len(rows)} certificate(s)")
        for row in rows:
            services = ", ".join(row["services"]) or "no services"
            click.echo(f"  {row['name']}: {', '.join(row['sans'])} -> {services}")
            cert = row.get("certificate")
            if cert and cert["ok"]:
                expires = f"expires {cert['not_after']} ({cert['days_left']} days)"
                click.echo(f"    ok: {expires}, sha256 {cert['sha256'][:16]}")
        for key in loaded.unknown_keys:
            click.echo(
                f"warning: {path}: {key}: unknown legacy key (kept out of the model)", err=True
            )
    for row in failed:
        click.echo(f"phoenix-cert: error: {row['certificate']['error']}", err=True)
    if failed:
        ctx.exit(EXIT_BAD_INPUT)


@manifest.command()
@manifest_option
def migrate(manifest_path: str | None) -> None:
    """Print the version-2 equivalent of a legacy manifest."""
    path = manifest_load.locate(manifest_path)
    loaded = manifest_load.load(path)
    if loaded.version != 1:
        raise UsageError(f"{path}: already version {loaded.version}; nothing to migrate")
    result = migrate_manifest(loaded)
    click.echo(json.dumps(result.document, indent=2))
    for note in result.notes:
        click.echo(f"note: {path}: {note}", err=True)
