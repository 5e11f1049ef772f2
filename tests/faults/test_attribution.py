"""The fault suite's charging of duplicates to faults (no servers: runs in the ordinary suite)."""

from __future__ import annotations

from tests.faults.attribution import Fault, charge, per_fault

FAULTS = [Fault(10.0, "kill"), Fault(11.0, "kill"), Fault(12.0, "redis_restart"), Fault(13.0, "kill")]


def test_a_copy_is_charged_to_the_fault_nearest_the_copy_before_it() -> None:
    # in flight at the first kill, re-sent after the third fault (its batch re-ran late)
    charged, unexplained = charge(FAULTS, [[10.002, 12.5], [9.998, 10.7], [11.001, 11.4]])
    assert per_fault(FAULTS, charged, "kill") == [2, 1, 0]
    assert unexplained == 0


def test_every_extra_copy_counts_and_singles_count_nothing() -> None:
    charged, unexplained = charge(FAULTS, [[11.995, 12.3], [12.99, 13.01, 14.0], [5.0], [12.2]])
    assert per_fault(FAULTS, charged, "redis_restart") == [1]
    assert per_fault(FAULTS, charged, "kill") == [0, 0, 2]
    assert unexplained == 0


def test_a_copy_with_no_fault_before_it_is_unexplained() -> None:
    charged, unexplained = charge(FAULTS, [[1.0, 2.0], [3.0, 9.0, 10.5]])
    assert unexplained == 2  # 2.0 and 9.0 come before every fault
    assert per_fault(FAULTS, charged, "kill") == [1, 0, 0]
