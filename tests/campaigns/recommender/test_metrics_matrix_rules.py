"""Ranking metrics on worked examples, the interaction matrix, and campaign rules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from campaigns.errors import InputError
from campaigns.recommender.matrix import InteractionLog, user_item_matrix
from campaigns.recommender.metrics import evaluate, ndcg_at_k
from campaigns.recommender.rules import CampaignRules


def test_metrics_on_a_worked_example() -> None:
    # user 0: hit at rank 2 of 3, 2 relevant; user 1: hits at ranks 1 and 3, 2 relevant
    recommended = np.array([[1, 2, 3], [5, 6, 7]])
    relevant = [{2, 9}, {5, 7}]
    m = evaluate(recommended, relevant, n_items=10, k=3)
    assert m.precision == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert m.recall == pytest.approx((1 / 2 + 2 / 2) / 2)
    ideal = 1 + 1 / math.log2(3)
    ndcg0 = (1 / math.log2(3)) / ideal
    ndcg1 = (1 + 1 / math.log2(4)) / ideal
    assert m.ndcg == pytest.approx((ndcg0 + ndcg1) / 2)
    assert m.hit_rate == 1.0
    assert m.coverage == pytest.approx(6 / 10)
    assert (m.users, m.k) == (2, 3)


def test_ndcg_ideal_is_capped_at_k_and_a_miss_scores_zero() -> None:
    hits = np.array([[True, True], [False, False]])
    assert ndcg_at_k(hits, np.array([5, 1]), 2).tolist() == pytest.approx([1.0, 0.0])


def test_the_matrix_counts_days_takes_the_strongest_kind_and_decays() -> None:
    log = InteractionLog.from_rows(
        user_ids=[7, 7, 7, 7, 9],
        item_ids=[100, 100, 100, 200, 200],
        kinds=["purchase", "click", "purchase", "click", "view"],
        age_days=[0.2, 0.5, 3.0, 1.0, 10.0],
    )
    matrix, users = user_item_matrix(log, np.array([100, 200, 300]), half_life_days=None)
    assert users.tolist() == [7, 9]
    # user 7, item 100: day 0 (purchase and click: the purchase counts) + day 3 (purchase) = 2
    assert matrix.toarray() == pytest.approx(np.array([[2.0, 0.5, 0.0], [0.0, 0.2, 0.0]]))
    decayed, _ = user_item_matrix(log, np.array([100, 200, 300]), half_life_days=10.0)
    assert decayed[1, 1] == pytest.approx(0.2 * 0.5)
    fixed, rows = user_item_matrix(log, np.array([100]), user_index=np.array([5, 7]), half_life_days=None)
    assert rows.tolist() == [5, 7] and fixed.toarray().tolist() == [[0.0], [2.0]]


@dataclass(frozen=True)
class Candidate:
    name: str
    category: str
    price: float


def test_rules_filter_by_category_price_and_per_category_cap() -> None:
    items = [
        Candidate("a", "kitchen", 5.0),
        Candidate("b", "kitchen", 15.0),
        Candidate("c", "garden", 25.0),
        Candidate("d", "kitchen", 8.0),
        Candidate("e", "toys", 3.0),
    ]
    assert [c.name for c in CampaignRules().apply(items, 3)] == ["a", "b", "c"]
    cheap = CampaignRules(max_price=10.0)
    assert [c.name for c in cheap.apply(items, 6)] == ["a", "d", "e"]
    one_each = CampaignRules(max_per_category=1)
    assert [c.name for c in one_each.apply(items, 6)] == ["a", "c", "e"]
    only = CampaignRules.from_mapping({"categories": ["kitchen"], "min_price": 6})
    assert [c.name for c in only.apply(items, 6)] == ["b", "d"]
    assert CampaignRules.from_mapping(only.to_mapping()) == only


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"max_per_category": 0}, "rules.max_per_category"),
        ({"max_price": "cheap"}, "rules.max_price"),
        ({"categories": "kitchen"}, "rules.categories"),
        ({"min_price": 9, "max_price": 3}, "rules.min_price"),
        ({"colour": "red"}, "rules"),
    ],
)
def test_bad_rules_say_what_and_where(raw: dict[str, object], where: str) -> None:
    with pytest.raises(InputError) as info:
        CampaignRules.from_mapping(raw)
    assert info.value.where == where
