"""Deliver a message through Apprise: the only module that imports apprise.

Every URL gets its own Apprise object in its own daemon thread, so one slow receiver
neither delays the others nor holds the run: after `timeout_s` we stop waiting, and the
sockets of every URL are bounded by the same time, so a thread left behind ends by itself.
Apprise's own log records (which may name a host, a path or a token) never reach our
output as they are: warnings become the reason of a failed delivery, redacted.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from phoenix_certbot.manifest.model import NotifyOn, NotifyTarget
from phoenix_certbot.notify.message import redact
from phoenix_certbot.notify.model import Message

DEFAULT_TIMEOUT_S = 10.0
_TYPES = {NotifyOn.FAILURE: "failure", NotifyOn.SUCCESS: "success", NotifyOn.EXPIRY: "warning"}


@dataclass(frozen=True)
class Delivery:
    target: NotifyTarget
    ok: bool
    reason: str = ""  # why it failed, redacted


# Which delivery a log record belongs to. Apprise sends from its own worker threads but
# carries our context along (contextvars), so this still names the delivery there.
_delivery: contextvars.ContextVar[object] = contextvars.ContextVar("phoenix_notify_delivery")


class _Warnings(logging.Handler):
    """Apprise's warnings, by the delivery they came from."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.by_delivery: dict[object, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.by_delivery.setdefault(_delivery.get(None), []).append(record.getMessage())


_capture = _Warnings()
_capture_lock = threading.Lock()


def _outside_delivery(record: logging.LogRecord) -> bool:
    return _delivery.get(None) is None


def _install_capture() -> None:
    import apprise  # noqa: F401 - first, so that its own logger set-up is done before ours

    with _capture_lock:
        apprise_log = logging.getLogger("apprise")
        if _capture not in apprise_log.handlers:
            apprise_log.handlers[:] = [_capture]
            apprise_log.setLevel(logging.WARNING)  # its debug lines print payloads and URLs
            apprise_log.propagate = False
        # The HTTP libraries under Apprise log request lines with the URL's path (a token)
        # at debug; certbot writes debug to its log file. Drop theirs while we deliver.
        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] in {"urllib3", "requests"}:
                library_log = logging.getLogger(name)
                if _outside_delivery not in library_log.filters:
                    library_log.addFilter(_outside_delivery)


def _send_one(target: NotifyTarget, message: Message, timeout_s: float) -> Delivery:
    import apprise

    key = object()
    _delivery.set(key)
    sender: Any = apprise.Apprise()
    if not sender.add(target.url):
        return Delivery(target, False, "not a URL Apprise understands")
    for plugin in sender:
        plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, timeout_s)
        plugin.socket_read_timeout = min(plugin.socket_read_timeout, timeout_s)
    ok = bool(
        sender.notify(
            body=message.body,
            title=message.title,
            notify_type=_TYPES.get(message.kind, "info") if message.kind else "info",
        )
    )
    if ok:
        return Delivery(target, True)
    said = _capture.by_delivery.pop(key, [])
    return Delivery(target, False, redact("; ".join(said) or "delivery failed", [target.url]))


def deliver(
    targets: Sequence[NotifyTarget], message: Message, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[Delivery]:
    """Send `message` to every target in parallel; one `Delivery` per target, in order."""
    _install_capture()
    results: dict[int, Delivery] = {}

    def run(index: int, target: NotifyTarget) -> None:
        try:
            results[index] = _send_one(target, message, timeout_s)
        except Exception as exc:  # a notifier must never break the run
            text = redact(f"{type(exc).__name__}: {exc}", [target.url])
            results[index] = Delivery(target, False, text)

    threads = [
        threading.Thread(target=run, args=(i, t), name=f"phoenix-notify-{i}", daemon=True)
        for i, t in enumerate(targets)
    ]
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [
        results.get(i) or Delivery(t, False, f"no answer within {timeout_s:g} s")
        for i, t in enumerate(targets)
    ]
