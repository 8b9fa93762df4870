"""The Apprise adapter against real HTTP receivers on loopback (Apprise's json://)."""

from __future__ import annotations

import time

from phoenix_certbot.manifest.model import NotifyOn, NotifyTarget
from phoenix_certbot.net.notify import deliver
from phoenix_certbot.notify.model import Message
from tests.support.receiver import TOKEN, json_receiver, silent_receiver

MESSAGE = Message(NotifyOn.FAILURE, "phoenix-cert on h: rollout failed for web", "- web: x")


def test_a_message_reaches_the_receiver_as_apprise_json() -> None:
    with json_receiver() as receiver:
        [delivery] = deliver([NotifyTarget(receiver.url, "settings.notify_urls[0]")], MESSAGE)
        assert delivery.ok, delivery.reason
        [body] = receiver.wait_for(1)
    assert body["title"] == MESSAGE.title
    assert body["message"] == MESSAGE.body
    assert body["type"] == "failure"


def test_each_url_gets_its_own_result_and_a_refusal_is_reported_without_the_url() -> None:
    with json_receiver() as good, json_receiver(status=500) as bad:
        targets = [
            NotifyTarget(good.url, "a"),
            NotifyTarget(bad.url, "b"),
            NotifyTarget(f"nosuchscheme://{TOKEN}", "c"),
        ]
        results = deliver(targets, MESSAGE)
    assert [d.ok for d in results] == [True, False, False]
    assert results[2].reason == "not a URL Apprise understands"
    assert results[1].reason
    for delivery in results:
        assert TOKEN not in delivery.reason and "hook" not in delivery.reason


def test_a_receiver_that_never_answers_costs_at_most_the_timeout() -> None:
    with silent_receiver() as url, json_receiver() as good:
        started = time.monotonic()
        results = deliver([NotifyTarget(url, "a"), NotifyTarget(good.url, "b")], MESSAGE, 1.5)
        took = time.monotonic() - started
        assert len(good.wait_for(1)) == 1  # the other URL is not held up
    print(f"\nsilent receiver: deliver returned after {took:.2f} s (timeout 1.5 s)")
    assert took < 1.5 + 1.0
    assert [d.ok for d in results] == [False, True]
    assert TOKEN not in results[0].reason


def test_no_log_record_of_a_delivery_names_the_url_even_at_debug() -> None:
    """certbot logs everything at debug to its file: nothing from a delivery may carry the
    URL's token there (urllib3 logs request lines with the path)."""
    import logging

    seen: list[str] = []

    class Everything(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(f"{record.name}: {record.getMessage()}")

    handler = Everything(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with json_receiver() as good, json_receiver(status=500) as bad:
            deliver([NotifyTarget(good.url, "a"), NotifyTarget(bad.url, "b")], MESSAGE)
        logging.getLogger("urllib3.connectionpool").debug("outside a delivery %s", "kept")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert not [line for line in seen if TOKEN in line]
    assert "urllib3.connectionpool: outside a delivery kept" in seen
