"""Estimator conventions and small cases worked out by hand."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from campaigns.errors import InputError
from campaigns.recommender.base import REASON_OWN, REASON_POPULAR, explain_item_item, top_k
from campaigns.recommender.baselines import PopularityRecommender, RepeatPurchaseRecommender
from campaigns.recommender.blend import BlendRecommender
from campaigns.recommender.collaborative import EASERecommender, ItemKNNRecommender
from campaigns.recommender.kinds import KINDS, make_estimator

# users x items; items 0 and 1 are always bought together, item 2 alone
PAIRS = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32))


def random_matrix(seed: int = 0, users: int = 40, items: int = 12) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, items)) < 0.3) * rng.integers(1, 4, (users, items))
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_follows_the_estimator_conventions(kind: str) -> None:
    estimator = make_estimator(kind)
    twin = clone(estimator)
    assert twin.get_params(deep=False).keys() == estimator.get_params(deep=False).keys()
    with pytest.raises(NotFittedError):
        estimator.recommend(random_matrix(), 3)
    assert estimator.fit(random_matrix()) is estimator
    fitted = {name for name in vars(estimator) if name.endswith("_") and not name.startswith("_")}
    assert "n_items_" in fitted
    assert not any(name.endswith("_") for name in twin.get_params(deep=False))
    idx, scores = estimator.recommend(random_matrix(1), 5)
    assert idx.shape == scores.shape == (40, 5)
    again = pickle.loads(pickle.dumps(estimator))
    assert np.array_equal(again.recommend(random_matrix(1), 5)[0], idx)


def test_nested_parameters_reach_the_blends_discovery_model() -> None:
    blend = make_estimator("blend", {"discovery__l2": 50.0, "own_weight": 2.0})
    params = blend.get_params()
    assert params["discovery__l2"] == 50.0
    assert params["own_weight"] == 2.0
    with pytest.raises(InputError):
        make_estimator("blend", {"no_such_param": 1})
    with pytest.raises(InputError):
        make_estimator("neural")


def test_scoring_a_matrix_of_another_width_is_refused() -> None:
    model = PopularityRecommender().fit(PAIRS)
    with pytest.raises(ValueError, match="fitted on 3"):
        model.score(sp.csr_matrix((1, 4), dtype=np.float32))


def test_popularity_counts_buyers_and_shrinks_groups_to_the_overall_shares() -> None:
    model = PopularityRecommender(shrinkage=1.0).fit(PAIRS, groups=["uk", "uk", "fr"])
    assert model.popularity_ == pytest.approx([2 / 3, 2 / 3, 1 / 3])
    # France: one buyer of item 2; (count + 1 * overall) / (1 + 1)
    france = model.group_popularity_[list(model.groups_).index("fr")]
    assert france == pytest.approx([(0 + 2 / 3) / 2, (0 + 2 / 3) / 2, (1 + 1 / 3) / 2])
    idx, _ = model.recommend(sp.csr_matrix((2, 3), dtype=np.float32), 1, groups=["fr", "nowhere"])
    assert idx.tolist() == [[2], [0]]


def test_repeat_purchases_rank_own_items_by_count_then_fill_with_best_sellers() -> None:
    history = sp.csr_matrix(np.array([[0, 1, 3]], dtype=np.float32))
    model = RepeatPurchaseRecommender().fit(PAIRS)
    idx, _ = model.recommend(history, 3)
    assert idx.tolist() == [[2, 1, 0]]
    assert model.explain(history, idx).tolist() == [[REASON_OWN, REASON_OWN, REASON_POPULAR]]


def test_item_knn_is_the_shrunk_cosine_of_item_columns() -> None:
    model = ItemKNNRecommender(shrink=0.0).fit(PAIRS)
    weights = model.similarity_.toarray()
    # items 0 and 1 have identical columns: cosine 1; item 2 shares no buyer: 0; diagonal removed
    assert weights == pytest.approx(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    shrunk = ItemKNNRecommender(shrink=2.0).fit(PAIRS).similarity_.toarray()
    assert shrunk[0, 1] == pytest.approx(2 / (2 + 2))


def test_ease_matches_its_closed_form_on_a_three_item_case() -> None:
    # G = X'X + I = [[3,2,0],[2,3,0],[0,0,2]]; P = G^-1 has [[.6,-.4],[-.4,.6]] and .5; B = -P / diag(P)
    model = EASERecommender(l2=1.0).fit(PAIRS)
    assert model.similarity_ == pytest.approx(np.array([[0, 2 / 3, 0], [2 / 3, 0, 0], [0, 0, 0]]), abs=1e-6)
    buyer_of_0 = sp.csr_matrix(np.array([[1, 0, 0]], dtype=np.float32))
    assert model.score(buyer_of_0)[0] == pytest.approx([0, 2 / 3, 0], abs=1e-6)
    assert model.explain(buyer_of_0, np.array([[1]])).tolist() == [[0]]


def test_low_rank_ease_is_exact_when_the_rank_suffices_and_is_seeded() -> None:
    dense = EASERecommender(l2=1.0).fit(PAIRS)
    low = EASERecommender(l2=1.0, rank=2, random_state=7).fit(PAIRS)
    rows = sp.csr_matrix(np.eye(3, dtype=np.float32))
    assert low.score(rows) == pytest.approx(dense.score(rows), abs=1e-5)
    matrix = random_matrix()
    first = EASERecommender(rank=4, random_state=3).fit(matrix).factors_
    second = EASERecommender(rank=4, random_state=3).fit(matrix).factors_
    assert first is not None and second is not None
    assert np.array_equal(first[0], second[0])


def test_the_blend_puts_own_repeat_items_first_and_explains_each_pick() -> None:
    # item 3 is a staple: every buyer re-buys it on several days
    train = sp.csr_matrix(
        np.array([[1, 1, 0, 3], [1, 1, 0, 2], [0, 0, 1, 4], [1, 0, 0, 0]], dtype=np.float32)
    )
    model = BlendRecommender(discovery=EASERecommender(l2=1.0), popularity_weight=0.0).fit(train)
    assert model.repeat_rate_[3] == pytest.approx((3 + 1) / (3 + 5))
    contact = sp.csr_matrix(np.array([[1, 0, 0, 2]], dtype=np.float32))
    idx, scores = model.recommend(contact, 3)
    # own part: item 3 -> 2 days x 4/8 = 1.0 (the contact's peak), item 0 -> 1 x 1/8 = 0.125;
    # discovery part: 0.4 x the discovery scores over their maximum
    discovery = model.discovery_.score(contact)[0]
    share = 0.4 * discovery / discovery.max()
    assert idx.tolist() == [[3, 1, 0]]
    assert scores[0] == pytest.approx([1.0 + share[3], share[1], 0.125 + share[0]], rel=1e-5)
    reasons = model.explain(contact, idx)
    assert reasons[0, 0] == REASON_OWN and reasons[0, 2] == REASON_OWN
    assert reasons[0, 1] in (0, 3)  # item 1 comes "because you bought" one of the contact's items


def test_top_k_breaks_ties_by_the_lower_column() -> None:
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]], dtype=np.float32)
    idx, values = top_k(scores, 3)
    assert idx.tolist() == [[1, 0, 2]]
    assert values[0].tolist() == pytest.approx([0.9, 0.5, 0.5])
    assert top_k(scores, 10)[0].shape == (1, 5)


def test_explanations_name_the_history_item_that_contributed_most() -> None:
    history = sp.csr_matrix(np.array([[2, 1, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    weights = np.array(
        [[0, 0, 0.1, 0.0], [0, 0, 0.5, 0.0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32
    )  # 2*0.1 < 1*0.5: item 2 is "because of" item 1; item 3 has no support
    reasons = explain_item_item(history, np.array([[2, 3, 0], [2, 3, 0]]), lambda j, i: weights[j, i])
    assert reasons.tolist() == [[1, REASON_POPULAR, REASON_OWN], [REASON_POPULAR] * 3]
