"""Prometheus textfile metrics of a status report, written through prometheus_client."""

from __future__ import annotations

import datetime as dt
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from phoenix_certbot.errors import OperationFailed
from phoenix_certbot.status.metrics import FAMILIES, metrics_text, write_textfile
from phoenix_certbot.status.model import CertHistory, Deployment, RunRecord, ServiceStatus
from tests.status.promtool import check_metrics
from tests.status.reports import NOW, T0, open_intents, sample_report


def samples(text: str) -> dict[str, float]:
    """series -> value of every sample line of an exposition text."""
    return {
        series: float(value)
        for series, value in (
            line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#")
        )
    }


def test_every_family_has_help_and_type_and_its_samples() -> None:
    text = metrics_text(sample_report())
    for family in FAMILIES:
        assert f"# HELP {family} " in text
        assert f"# TYPE {family} gauge" in text
    assert samples(text) == {
        'phoenix_cert_not_after_timestamp_seconds{cert="web"}': 1775044800,
        'phoenix_cert_not_after_timestamp_seconds{cert="lonely"}': 1767268800,
        'phoenix_cert_files_ok{cert="web"}': 1,
        'phoenix_cert_files_ok{cert="broken"}': 0,
        'phoenix_cert_files_ok{cert="lonely"}': 1,
        'phoenix_cert_deployed{cert="web",service="prod_web"}': 1,
        'phoenix_cert_deployed{cert="web",service="prod_old"}': 0,
        'phoenix_cert_deployed{cert="web",service="prod_stack"}': 0,
        'phoenix_cert_deployed{cert="broken",service="gone"}': 0,
        'phoenix_cert_last_rotation_timestamp_seconds{cert="web",result="ok"}': 1767268800,
        'phoenix_cert_last_rotation_ok{cert="web"}': 1,
        'phoenix_cert_verify_ok{cert="web",url="https://10.0.0.1:9443/"}': 1,
        'phoenix_cert_verify_ok{cert="web",url="https://q\\"x/"}': 0,
        "phoenix_cert_open_intents": 0,  # always written: an alert on it can clear
        "phoenix_cert_metrics_timestamp_seconds": NOW.timestamp(),
    }


def test_open_intents_are_counted_unreadable_ones_too() -> None:
    report = replace(sample_report(), open_intents=open_intents())
    assert samples(metrics_text(report))["phoenix_cert_open_intents"] == 2


def test_failures_and_backoff_are_written_when_the_state_has_them() -> None:
    report = sample_report()
    web = report.certificates[0]
    failing = replace(
        web,
        history=CertHistory(
            last_rotation=RunRecord(time=T0, result="failed"),
            failures=3,
            backoff_until=T0 + dt.timedelta(hours=4),
        ),
    )
    values = samples(metrics_text(replace(report, certificates=(failing,))))
    assert values['phoenix_cert_last_rotation_ok{cert="web"}'] == 0
    assert values['phoenix_cert_rollout_failures{cert="web"}'] == 3
    assert values['phoenix_cert_backoff_until_timestamp_seconds{cert="web"}'] == (
        T0.timestamp() + 4 * 3600
    )


def test_label_values_are_escaped() -> None:
    report = sample_report()
    odd = replace(report.certificates[2], name='a\\b"c\nd')
    text = metrics_text(replace(report, certificates=(odd,)))
    assert samples(text)['phoenix_cert_files_ok{cert="a\\\\b\\"c\\nd"}'] == 1


def test_a_service_bound_twice_gives_one_sample_that_is_1_only_if_both_are_up_to_date() -> None:
    report = sample_report()
    web = report.certificates[0]
    twice = replace(
        web,
        services=(
            ServiceStatus("s", Deployment.UP_TO_DATE),
            ServiceStatus("s", Deployment.BEHIND),
        ),
    )
    values = samples(metrics_text(replace(report, certificates=(twice,))))
    assert {k: v for k, v in values.items() if k.startswith("phoenix_cert_deployed{")} == {
        'phoenix_cert_deployed{cert="web",service="s"}': 0
    }


def test_promtool_accepts_the_metrics() -> None:
    check_metrics(metrics_text(sample_report()))
    # Families without a sample (nothing rotated yet) are still valid.
    empty = replace(sample_report(), certificates=())
    check_metrics(metrics_text(empty))


def test_the_textfile_is_replaced_whole_with_mode_0644_even_under_a_strict_umask(
    tmp_path: Path,
) -> None:
    path = tmp_path / "phoenix-cert.prom"
    path.write_text("old content\n")
    old = os.umask(0o077)
    try:
        write_textfile(path, sample_report())
    finally:
        os.umask(old)
    assert path.read_text() == metrics_text(sample_report())
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["phoenix-cert.prom"]  # no temporary left
    write_textfile(tmp_path / "new" / "x.prom", sample_report())  # the folder is made
    with pytest.raises(OperationFailed, match="cannot write metrics"):
        write_textfile(path / "x.prom", sample_report())  # under a file: no folder possible
