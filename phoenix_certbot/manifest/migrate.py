"""Turn a legacy manifest into its version-2 equivalent (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from phoenix_certbot.manifest.model import Manifest


@dataclass(frozen=True)
class Migration:
    document: dict[str, Any]  # the version-2 manifest, ready for json.dumps
    notes: tuple[str, ...]  # what could not be carried over, one line each


def migrate(manifest: Manifest) -> Migration:
    notes: list[str] = []
    certificates: list[dict[str, Any]] = []
    for i, entry in enumerate(manifest.certificates):
        item: dict[str, Any] = {"name": entry.name, "sans": list(entry.sans)}
        paths = entry.paths
        if paths.lineage is not None:
            item["lineage"] = str(paths.lineage)
        else:
            item["cert_path"] = str(paths.cert)
            item["key_path"] = str(paths.key)
            if paths.chain is not None:
                item["chain_path"] = str(paths.chain)
            if paths.fullchain is not None:
                item["fullchain_path"] = str(paths.fullchain)
        # A legacy force update becomes a service with nothing mounted: it is force-updated
        # when the certificate changes, exactly what the old command did.
        item["services"] = [{"service": b.service} for b in entry.services]
        if entry.legacy_command:
            notes.append(
                f"$[{i}].post_renewal_command not migrated "
                f"(not `docker service update --force SERVICE`): {entry.legacy_command}"
            )
        if entry.owner or entry.permissions:
            notes.append(
                f"$[{i}]: owner/permissions ({entry.owner or '-'} {entry.permissions or '-'}) "
                "describe the existing files and are not carried over; "
                "use services[].files to write copies"
            )
        certificates.append(item)
    notes.extend(f"{key}: unknown legacy key dropped" for key in manifest.unknown_keys)
    return Migration(document={"version": 2, "certificates": certificates}, notes=tuple(notes))
