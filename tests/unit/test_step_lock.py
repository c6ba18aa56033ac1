"""Step locks: a waiter for a busy key can give up (a cancelled build), and keys map to
a bounded set of lock files."""

from __future__ import annotations

from pathlib import Path

import pytest

from strata.solver.solve import step_lock_name
from strata.store.root import StateRoot


def test_a_polled_lock_wait_can_give_up(tmp_path: Path) -> None:
    root = StateRoot.open(tmp_path / "root")
    polls: list[int] = []

    def give_up() -> None:
        polls.append(1)
        if len(polls) == 3:
            raise TimeoutError("gave up")

    try:
        with (
            root.lock("step-abc"),
            pytest.raises(TimeoutError),
            root.lock("step-abc", poll=give_up),
        ):
            pass
        assert len(polls) == 3
        with root.lock("step-abc", poll=give_up):  # free now: no wait, no poll
            pass
        assert len(polls) == 3
    finally:
        root.close()


def test_step_locks_are_striped_by_key() -> None:
    key = "sha256:" + "ab12" * 16
    assert step_lock_name(key) == "step-ab1"
    assert step_lock_name(key) == step_lock_name(key[:-4] + "ffff")
