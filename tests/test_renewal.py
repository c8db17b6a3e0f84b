"""Pulumi's admin certificate is renewed only when it nears expiry, as the stack's last outputs
record it: two runs on different dates register identical inputs (a second `pulumi up` is a no-op
whatever the date); a run within the margin mints exactly one new certificate."""

from __future__ import annotations

import datetime

import time_machine

from stacks import renewal
from tests.conftest import fixture_config
from tests.hostrun import rendered_env
from tooling import offline
from tooling.fakes import ISSUED

UTC = datetime.timezone.utc


def up_on(day: datetime.datetime, previous: dict | None, stack: str = "prod") -> offline.Recording:
    config, secret = fixture_config(stack)
    with time_machine.travel(day, tick=False):
        return offline.run(stack, preview=False, config=config, secret_keys=secret,
                           previous_outputs={renewal.OUTPUT: previous} if previous else None)


def inputs(rec: offline.Recording) -> dict[str, dict]:
    return {r.urn: r.inputs for r in rec.resources.values()}


def test_the_first_run_records_what_the_next_decides_from():
    rec = up_on(datetime.datetime(2026, 11, 26, tzinfo=UTC), None)
    assert rendered_env(rec, "k0s-kubeconfig")["RENEWAL"] == renewal.FIRST
    # notAfter is read from the certificate k0s signed (the fakes sign one at ISSUED for a year)
    assert rec.outputs[renewal.OUTPUT] == {
        "key": renewal.FIRST,
        "notAfter": (ISSUED + datetime.timedelta(hours=renewal.LIFETIME_HOURS)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    assert renewal.OUTPUT not in rec.secret_outputs


def test_runs_on_any_date_before_the_margin_change_nothing():
    previous = {"key": "2026-06-01", "notAfter": "2027-06-01T00:00:00Z"}
    days = [datetime.datetime(2026, 6, 2, tzinfo=UTC), datetime.datetime(2026, 12, 31, 23, tzinfo=UTC),
            datetime.datetime(2027, 4, 1, tzinfo=UTC)]  # 61 days before expiry
    runs = [up_on(day, previous) for day in days]
    assert inputs(runs[0]) == inputs(runs[1]) == inputs(runs[2])
    assert rendered_env(runs[0], "k0s-kubeconfig")["RENEWAL"] == "2026-06-01"


def test_a_certificate_within_the_margin_is_renewed_once():
    previous = {"key": "2026-06-01", "notAfter": "2027-06-01T00:00:00Z"}
    before = up_on(datetime.datetime(2027, 3, 1, tzinfo=UTC), previous)
    due = up_on(datetime.datetime(2027, 4, 15, tzinfo=UTC), previous)
    changed = sorted(before.resources[urn].name for urn in inputs(due) if inputs(due)[urn] != inputs(before)[urn])
    assert changed == ["k0s-kubeconfig"]  # (and then the provider's kubeconfig, computed from its output)
    assert rendered_env(due, "k0s-kubeconfig")["RENEWAL"] == "2027-04-15"
    # and the run after it, with what that update recorded, changes nothing again
    renewed = {"key": "2027-04-15", "notAfter": "2028-04-14T00:00:00Z"}
    assert inputs(up_on(datetime.datetime(2027, 4, 16, tzinfo=UTC), renewed)) == inputs(
        up_on(datetime.datetime(2027, 12, 1, tzinfo=UTC), renewed))


def test_an_expired_or_unreadable_record_renews():
    now = datetime.datetime(2027, 1, 1, tzinfo=UTC)
    assert renewal.key({"key": "a", "notAfter": "2026-12-01T00:00:00Z"}, now) == "2027-01-01"
    assert renewal.key({"key": "a", "notAfter": "not a date"}, now) == "2027-01-01"
    assert renewal.key({"key": "a", "notAfter": None}, now) == renewal.FIRST
