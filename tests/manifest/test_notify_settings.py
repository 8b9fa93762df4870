"""settings.notify_urls, notify_urls_file and notify_on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from phoenix_certbot.errors import ManifestError
from phoenix_certbot.manifest import load as manifest_load
from phoenix_certbot.manifest.model import NotifyOn, NotifyTarget
from tests.manifest.test_load import example, write

SECRET = "xoxb-123-secret"


def with_settings(**settings: Any) -> dict[str, Any]:
    data = example()
    data.setdefault("settings", {}).update(settings)
    return data


def test_defaults_send_failures_to_nobody(tmp_path: Path) -> None:
    settings = manifest_load.load(write(tmp_path, example())).settings
    assert settings.notify_targets == ()
    assert settings.notify_on == frozenset({NotifyOn.FAILURE})


def test_urls_from_the_manifest_and_the_file_are_kept_in_order_with_their_origin(
    tmp_path: Path,
) -> None:
    urls = tmp_path / "notify-urls"
    urls.write_text(f"# ops channel\n\n  ntfys://ntfy.sh/{SECRET}  \n# json://old\njson://h/p\n")
    urls.chmod(0o600)
    data = with_settings(
        notify_urls=[f"tgram://{SECRET}/42"],
        notify_urls_file="notify-urls",  # relative to the manifest
        notify_on=["failure", "expiry"],
    )
    settings = manifest_load.load(write(tmp_path, data)).settings
    assert settings.notify_targets == (
        NotifyTarget(f"tgram://{SECRET}/42", "settings.notify_urls[0]"),
        NotifyTarget(f"ntfys://ntfy.sh/{SECRET}", f"{urls}:3"),
        NotifyTarget("json://h/p", f"{urls}:5"),
    )
    assert settings.notify_on == frozenset({NotifyOn.FAILURE, NotifyOn.EXPIRY})
    # The URLs are secrets: not in any repr (tracebacks, debug logs).
    assert SECRET not in repr(settings) and SECRET not in repr(settings.notify_targets)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_urls_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    urls = tmp_path / "notify-urls"
    urls.write_text("json://h/p\n")
    urls.chmod(mode)
    with pytest.raises(ManifestError, match=r"readable by group or others.*chmod go-rwx") as exc:
        manifest_load.load(write(tmp_path, with_settings(notify_urls_file=str(urls))))
    assert exc.value.file == str(urls)


def test_a_urls_file_others_can_write_is_refused_when_root(tmp_path: Path) -> None:
    urls = tmp_path / "notify-urls"
    urls.write_text("json://h/p\n")
    urls.chmod(0o620)
    with pytest.raises(ManifestError, match="writable by group or others"):
        manifest_load.read_notify_urls(urls, euid=0)
    assert manifest_load.read_notify_urls(urls, euid=1000) == [
        NotifyTarget("json://h/p", f"{urls}:1")
    ]


def test_a_missing_urls_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="notify_urls_file: cannot read: No such file"):
        manifest_load.load(write(tmp_path, with_settings(notify_urls_file="absent")))


def test_a_value_that_is_not_a_url_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as exc:
        manifest_load.load(write(tmp_path, with_settings(notify_urls=[SECRET])))
    assert str(exc.value).endswith("$.settings.notify_urls[0]: not a URL (scheme://...)")
    assert SECRET not in str(exc.value)
    urls = tmp_path / "notify-urls"
    urls.write_text(f"json://ok/\n{SECRET}\n")
    urls.chmod(0o600)
    with pytest.raises(ManifestError) as exc:
        manifest_load.load(write(tmp_path, with_settings(notify_urls_file=str(urls))))
    assert str(exc.value) == f"{urls}:2: not a URL (scheme://...)"


def test_notify_on_accepts_only_the_three_events(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"notify_on\[0\]: expected one of failure"):
        manifest_load.load(write(tmp_path, with_settings(notify_on=["always"])))
