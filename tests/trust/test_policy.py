"""HQ's trust policy file: what it says is what HQ holds tills to; a bad file names its fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.hq.policy import PolicyError, TrustPolicy


def test_the_policy_reads_operators_bounds_and_grants(tmp_path: Path) -> None:
    path = tmp_path / "trust.toml"
    path.write_text('[operators.S001]\n"王芳" = "manager"\nann = "cashier"\n'
                    '[adjust]\nmax_points = 300\n[adjust.cross_store]\nS001 = ["S002"]\n'
                    '[holds]\nmax_per_member = 2\n[limits]\nrequests_per_second = 2.5\n',
                    encoding="utf-8")
    policy = TrustPolicy.load(path)
    assert policy.is_manager("S001", "王芳") and not policy.is_manager("S001", "ann")
    assert not policy.is_manager("S002", "王芳")
    assert policy.adjust.max_points == 300 and policy.adjust.max_per_member_per_day == 10_000
    assert policy.adjust.may_cross("S001", "S002") and not policy.adjust.may_cross("S002", "S001")
    assert policy.holds.max_per_member == 2 and policy.limits.requests_per_second == 2.5


def test_no_policy_means_no_manager_anywhere() -> None:
    assert not TrustPolicy().is_manager("S001", "manager")


@pytest.mark.parametrize(("text", "fault"), [
    ("[operators.S001]\nann = \"boss\"\n", "the role is one of cashier, manager"),
    ("[adjust]\nmax_points = -5\n", "max_points = -5 must be a positive whole number"),
    ("[adjust]\nmax_points = 1.5\n", "max_points = 1.5 must be a positive whole number"),
    ("[adjust]\nmax_point = 5\n", "'max_point' is not a known key"),
    ("[holds]\nmax_per_till = true\n", "max_per_till = True must be a positive"),
    ("[adjust.cross_store]\nS001 = \"S002\"\n", "must be a list of store codes"),
    ("operators = 3\n", "operators must be a table"),
    ("[limits\n", "trust.toml"),
    ("surprise = 1\n", "'surprise' is not a known key"),
])
def test_a_bad_policy_names_its_fault(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "trust.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"trust\.toml") as caught:
        TrustPolicy.load(path)
    assert fault in str(caught.value)
