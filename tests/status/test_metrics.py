"""Prometheus textfile metrics of a status report."""

from __future__ import annotations

from dataclasses import replace

from phoenix_certbot.status.metrics import FAMILIES, metrics_text
from phoenix_certbot.status.model import Deployment, ServiceStatus
from tests.status.promtool import check_metrics
from tests.status.reports import sample_report


def samples(text: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_every_family_has_help_and_type_and_its_samples() -> None:
    text = metrics_text(sample_report())
    for family, _ in FAMILIES:
        assert f"# HELP {family} " in text
        assert f"# TYPE {family} gauge" in text
    assert samples(text) == {
        'phoenix_cert_not_after_timestamp_seconds{cert="web"}': "1775044800",
        'phoenix_cert_not_after_timestamp_seconds{cert="lonely"}': "1767268800",
        'phoenix_cert_files_ok{cert="web"}': "1",
        'phoenix_cert_files_ok{cert="broken"}': "0",
        'phoenix_cert_files_ok{cert="lonely"}': "1",
        'phoenix_cert_deployed{cert="web",service="prod_web"}': "1",
        'phoenix_cert_deployed{cert="web",service="prod_old"}': "0",
        'phoenix_cert_deployed{cert="web",service="prod_stack"}': "0",
        'phoenix_cert_deployed{cert="broken",service="gone"}': "0",
        'phoenix_cert_last_rotation_timestamp_seconds{cert="web",result="ok"}': "1767268800",
        'phoenix_cert_verify_ok{cert="web",url="https://10.0.0.1:9443/"}': "1",
        'phoenix_cert_verify_ok{cert="web",url="https://q\\"x/"}': "0",
    }


def test_label_values_are_escaped() -> None:
    report = sample_report()
    odd = replace(report.certificates[2], name='a\\b"c\nd')
    text = metrics_text(replace(report, certificates=(odd,)))
    assert 'phoenix_cert_files_ok{cert="a\\\\b\\"c\\nd"} 1' in text.splitlines()


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
    text = metrics_text(replace(report, certificates=(twice,)))
    assert [line for line in text.splitlines() if line.startswith("phoenix_cert_deployed{")] == [
        'phoenix_cert_deployed{cert="web",service="s"} 0'
    ]


def test_promtool_accepts_the_metrics() -> None:
    check_metrics(metrics_text(sample_report()))
    # Families without a sample (nothing rotated yet) are still valid.
    empty = replace(sample_report(), certificates=())
    check_metrics(metrics_text(empty))
