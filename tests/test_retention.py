"""The retention policy, checked against a second, independent reading of its rules."""

from __future__ import annotations

import datetime
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backups_app.operations.retention import Candidate, RetentionPolicy, apply_policy

UTC = datetime.UTC
START = datetime.datetime(2023, 12, 25, tzinfo=UTC)

times = st.integers(min_value=0, max_value=800 * 86_400).map(
    lambda seconds: START + datetime.timedelta(seconds=seconds)
)
candidates = st.lists(
    st.tuples(times, st.integers(0, 1000), st.sampled_from([None, True, False])),
    max_size=60,
).map(
    lambda items: [
        Candidate(f"backup-{i:03d}", when, size, intact)
        for i, (when, size, intact) in enumerate(items)
    ]
)
policies = st.builds(
    RetentionPolicy,
    last=st.integers(0, 5),
    daily=st.integers(0, 10),
    weekly=st.integers(0, 6),
    monthly=st.integers(0, 6),
    yearly=st.integers(0, 3),
)
PERIOD_KEYS = {
    "daily": lambda when: when.date(),
    "weekly": lambda when: when.isocalendar()[:2],
    "monthly": lambda when: (when.year, when.month),
    "yearly": lambda when: when.year,
}


def expected_kept(items: list[Candidate], policy: RetentionPolicy) -> set[str]:
    """The rules read a second way: group by period, newest groups first."""
    newest_first = sorted(items, key=lambda c: (c.created, c.name), reverse=True)
    if not newest_first:
        return set()
    kept = {newest_first[0].name}
    newest_intact = next((c.name for c in newest_first if c.intact), None)
    if newest_intact is not None:
        kept.add(newest_intact)
    kept |= {c.name for c in newest_first[: policy.last]}
    for period, key in PERIOD_KEYS.items():
        groups = itertools.groupby(newest_first, key=lambda c, key=key: key(c.created))
        for _, group in itertools.islice(groups, getattr(policy, period)):
            kept.add(next(group).name)
    return kept


@given(candidates, policies)
@settings(max_examples=300, deadline=None)
def test_kept_set_matches_the_rules(items, policy):
    decisions = apply_policy(items, policy)
    assert [d.candidate.name for d in decisions] == [
        c.name for c in sorted(items, key=lambda c: (c.created, c.name), reverse=True)
    ]
    assert {d.candidate.name for d in decisions if d.keep} == expected_kept(
        items, policy
    )
    for decision in decisions:
        assert decision.keep == bool(decision.reasons)


@given(candidates, policies, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_decisions_do_not_depend_on_input_order(items, policy, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert apply_policy(shuffled, policy) == apply_policy(items, policy)


@given(candidates, policies)
@settings(max_examples=200, deadline=None)
def test_newest_and_newest_intact_are_always_kept(items, policy):
    decisions = apply_policy(items, policy)
    if not decisions:
        return
    assert decisions[0].keep and "newest" in decisions[0].reasons
    intact = [d for d in decisions if d.candidate.intact]
    if intact:
        assert intact[0].keep and "newest intact" in intact[0].reasons


@given(candidates, policies, st.integers(0, 20_000))
@settings(max_examples=300, deadline=None)
def test_max_total_size_drops_the_oldest_first(items, policy, limit):
    sized = RetentionPolicy(
        last=policy.last,
        daily=policy.daily,
        weekly=policy.weekly,
        monthly=policy.monthly,
        yearly=policy.yearly,
        max_total_size=limit,
    )
    unlimited = {d.candidate.name for d in apply_policy(items, policy) if d.keep}
    decisions = apply_policy(items, sized)
    kept = [d for d in decisions if d.keep]
    dropped = [d for d in decisions if d.reasons == ("over max total size",)]
    protected = [d for d in kept if {"newest", "newest intact"} & set(d.reasons)]
    # Only what the policy kept can be dropped for size, and it is the oldest of it.
    assert {d.candidate.name for d in kept} | {
        d.candidate.name for d in dropped
    } == unlimited
    unprotected = [d for d in kept if d not in protected]
    if dropped and unprotected:
        assert min(d.candidate.created for d in unprotected) >= max(
            d.candidate.created for d in dropped
        )
    if dropped:
        # It stopped dropping as soon as the rest fitted, or only protected ones remain.
        assert sum(d.candidate.size for d in kept) <= limit or not unprotected


def test_a_policy_that_keeps_nothing_keeps_the_newest():
    items = [
        Candidate("a", START, 10),
        Candidate("b", START + datetime.timedelta(days=1), 10, intact=False),
        Candidate("c", START + datetime.timedelta(days=2), 10),
    ]
    decisions = apply_policy(items, RetentionPolicy())
    assert [(d.candidate.name, d.keep, d.reasons) for d in decisions] == [
        ("c", True, ("newest",)),
        ("b", False, ()),
        ("a", False, ()),
    ]


def test_seven_days_of_four_backups_a_day_keep_one_a_day():
    items = [
        Candidate(f"{day}-{hour:02d}", START + datetime.timedelta(days=day, hours=hour))
        for day in range(10)
        for hour in (0, 6, 12, 18)
    ]
    kept = [
        d.candidate.name
        for d in apply_policy(items, RetentionPolicy(daily=7))
        if d.keep
    ]
    assert kept == ["9-18", "8-18", "7-18", "6-18", "5-18", "4-18", "3-18"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("last", -1), ("daily", 1.5), ("weekly", True), ("max_total_size", "1G")],
)
def test_bad_policy_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        RetentionPolicy(**{field: value})


def test_order_tie_breaks_by_name():
    items = [Candidate(name, START) for name in random.Random(1).sample("abcdef", 6)]
    assert [d.candidate.name for d in apply_policy(items, RetentionPolicy())] == list(
        "fedcba"
    )
