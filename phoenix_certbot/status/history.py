"""The state directory's history (`StateStore.read()`) as `History` values (pure).

The file may come from an older or newer version, or be edited by hand: anything that does
not have the expected shape is left out rather than failing the whole status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from phoenix_certbot.status.model import CertHistory, History, RunRecord


def _time(raw: Any) -> dt.datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # we always write UTC with an offset; assume UTC otherwise
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def _record(raw: Any) -> RunRecord | None:
    if not isinstance(raw, Mapping):
        return None
    urls = raw.get("urls")
    pairs = (
        tuple(sorted((str(url), ok is True) for url, ok in urls.items()))
        if isinstance(urls, Mapping)
        else ()
    )
    return RunRecord(time=_time(raw.get("time")), result=str(raw.get("result", "?")), urls=pairs)


def history_from_state(data: Mapping[str, Any]) -> History:
    certs_raw = data.get("certs")
    held_raw = data.get("held")
    held = held_raw if isinstance(held_raw, Mapping) else {}
    certs: dict[str, CertHistory] = {}
    if isinstance(certs_raw, Mapping):
        for name, entry in certs_raw.items():
            if isinstance(entry, Mapping):
                leaf = held.get(name)
                failures = entry.get("failures")
                backoff_leaf = entry.get("backoff_leaf")
                certs[str(name)] = CertHistory(
                    last_rotation=_record(entry.get("last_rotation")),
                    last_verify=_record(entry.get("last_verify")),
                    held_leaf=leaf if isinstance(leaf, str) else None,
                    failures=failures if type(failures) is int else None,
                    backoff_until=_time(entry.get("backoff_until")),
                    backoff_leaf=backoff_leaf if isinstance(backoff_leaf, str) else None,
                )
    restarted_raw = data.get("restarted")
    restarted: dict[tuple[str, str], str] = {}
    if isinstance(restarted_raw, Mapping):
        for key, leaf in restarted_raw.items():
            cert, sep, service = str(key).partition("|")
            if sep and isinstance(leaf, str):
                restarted[(cert, service)] = leaf
    return History(certs=certs, restarted=restarted)
