"""Offline evaluation on a time split: fit on everything before the split, rank for the customers
who bought on both sides, and score the ranking against what they bought after it.

The reference protocol (see ../shared/data/README.md): Online Retail, split at 2011-09-01, P@10,
R@10, NDCG@10, HR@10 and catalog coverage over customers with purchases on both sides, repeat
purchases allowed (a customer's own past items may be recommended and count as hits).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone

from campaigns.recommender.base import RecommenderBase
from campaigns.recommender.kinds import make_estimator, takes_groups
from campaigns.recommender.matrix import DEFAULT_HALF_LIFE_DAYS, InteractionLog, user_item_matrix
from campaigns.recommender.metrics import RankingMetrics, evaluate


@dataclass(frozen=True)
class TimeSplit:
    train: sp.csr_matrix  # every user with a purchase before the split x items seen before it
    users: np.ndarray  # user id of each row
    groups: np.ndarray  # country of each row
    item_ids: np.ndarray  # item id of each column
    eval_rows: np.ndarray  # rows of the users who also bought after the split
    relevant: list[set[int]]  # per evaluated user: columns bought after (-1 - id: unseen before)


@dataclass(frozen=True)
class ModelResult:
    name: str
    metrics: RankingMetrics
    fit_seconds: float


def time_split(
    log: InteractionLog,
    is_test: np.ndarray,
    country_of: Mapping[int, str],
    half_life_days: float | None = DEFAULT_HALF_LIFE_DAYS,
) -> TimeSplit:
    """`log` ages are measured from the split; `is_test` marks interactions after it."""
    train_log = InteractionLog(
        log.user_ids[~is_test], log.item_ids[~is_test], log.weights[~is_test], log.age_days[~is_test]
    )
    item_ids = np.unique(train_log.item_ids)
    matrix, users = user_item_matrix(train_log, item_ids, half_life_days=half_life_days)
    test_users, test_items = log.user_ids[is_test], log.item_ids[is_test]
    row_of = {int(u): r for r, u in enumerate(users)}
    col = np.searchsorted(item_ids, test_items).clip(0, max(len(item_ids) - 1, 0))
    known = item_ids[col] == test_items if len(item_ids) else np.zeros(len(test_items), dtype=bool)
    columns = np.where(known, col, -1 - test_items)
    bought: dict[int, set[int]] = {}
    for user, column in zip(test_users.tolist(), columns.tolist(), strict=True):
        if user in row_of:
            bought.setdefault(row_of[user], set()).add(column)
    eval_rows = np.array(sorted(bought), dtype=np.int64)
    return TimeSplit(
        train=matrix,
        users=users,
        groups=np.array([country_of.get(int(u), "") for u in users], dtype=object),
        item_ids=item_ids,
        eval_rows=eval_rows,
        relevant=[bought[int(r)] for r in eval_rows],
    )


def evaluate_model(
    name: str, estimator: RecommenderBase, split: TimeSplit, k: int = 10, fitted: bool = False
) -> ModelResult:
    started = time.perf_counter()
    if not fitted:
        if takes_groups(estimator):
            estimator.fit(split.train, groups=split.groups)
        else:
            estimator.fit(split.train)
    fit_seconds = time.perf_counter() - started
    rows = split.train[split.eval_rows]
    params: dict[str, Any] = {}
    if "groups" in _score_params(estimator):
        params["groups"] = split.groups[split.eval_rows]
    recommended, _ = estimator.recommend(rows, k, **params)
    metrics = evaluate(recommended, split.relevant, n_items=split.train.shape[1], k=k)
    return ModelResult(name=name, metrics=metrics, fit_seconds=fit_seconds)


def standard_models() -> dict[str, RecommenderBase]:
    """The baselines and the production blend, with their default parameters."""
    return {
        "popularity": make_estimator("popularity"),
        "own past items": make_estimator("repeat", {"binary": True}),
        "own past items by purchase days": make_estimator("repeat"),
        "item-kNN": make_estimator("item_knn"),
        "EASE": make_estimator("ease"),
        "blend (production)": make_estimator("blend"),
    }


def evaluate_all(
    split: TimeSplit, models: Mapping[str, RecommenderBase] | None = None, k: int = 10
) -> list[ModelResult]:
    return [evaluate_model(name, clone(est), split, k) for name, est in (models or standard_models()).items()]


def format_table(results: list[ModelResult], users: int | None = None) -> str:
    k = results[0].metrics.k if results else 10
    header = f"| model | P@{k} | R@{k} | NDCG@{k} | HR@{k} | coverage | fit s |"
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        m = r.metrics
        lines.append(
            f"| {r.name} | {m.precision:.4f} | {m.recall:.4f} | {m.ndcg:.4f} | {m.hit_rate:.4f} "
            f"| {m.coverage:.4f} | {r.fit_seconds:.1f} |"
        )
    if users is not None:
        lines.append(f"\n{users} customers evaluated")
    return "\n".join(lines)


# the baselines of the reference protocol (../shared/data/README.md), and a stronger one of ours
BASELINES = ("popularity", "own past items", "item-kNN", "EASE")
STRONG_BASELINES = (*BASELINES, "own past items by purchase days")
PRODUCTION = "blend (production)"
TARGET_RATIO = 1.2


@dataclass(frozen=True)
class OfflineReport:
    results: list[ModelResult]
    customers: int
    split: str

    def ratio(self, baselines: tuple[str, ...] = BASELINES) -> tuple[float, str]:
        """Production NDCG over the best of the given baselines' NDCG, and that baseline's name."""
        by_name = {r.name: r.metrics.ndcg for r in self.results}
        best = max((n for n in baselines if n in by_name), key=lambda n: by_name[n])
        return by_name[PRODUCTION] / by_name[best] if by_name[best] else float("inf"), best


def online_retail_report(path: str | None = None, k: int = 10) -> OfflineReport:
    """The reference protocol on the Online Retail data: train before 2011-09-01, test after."""
    from campaigns.recommender import retail

    data = retail.load(path)
    log = retail.as_log(data, retail.SPLIT)
    split = time_split(
        log, data.days >= retail.day_number(retail.SPLIT), data.country_of, half_life_days=None
    )
    return OfflineReport(
        results=evaluate_all(split, k=k),
        customers=len(split.eval_rows),
        split=retail.SPLIT.date().isoformat(),
    )


def holdout_metrics(
    kind: str,
    params: dict[str, Any],
    log: InteractionLog,
    country_of: Mapping[int, str],
    holdout_days: float,
    k: int = 10,
) -> dict[str, Any]:
    """Offline metrics of a database-trained version: refit on its data minus the last `holdout_days`
    of it and evaluate on those days (same protocol as the Online Retail split)."""
    if len(log) == 0:
        return {"evaluated": False, "why": "no interactions"}
    # the holdout is the last days *of data* (a window may end long after the last interaction)
    cut = float(log.age_days.min()) + holdout_days
    is_test = log.age_days < cut
    if not is_test.any() or is_test.all():
        return {"evaluated": False, "why": f"no interactions on both sides of the last {holdout_days:g} days"}
    shifted = InteractionLog(log.user_ids, log.item_ids, log.weights, np.maximum(log.age_days - cut, 0))
    half_life = params.get("half_life_days", DEFAULT_HALF_LIFE_DAYS)
    split = time_split(shifted, is_test, country_of, half_life_days=half_life or None)
    if len(split.eval_rows) == 0:
        return {"evaluated": False, "why": "no contact interacted on both sides of the holdout split"}
    result = evaluate_model(kind, make_estimator(kind, params), split, k)
    return {
        "evaluated": True,
        "protocol": f"last {holdout_days:g} days of data held out",
        **_flat(result.metrics),
    }


def _flat(metrics: RankingMetrics) -> dict[str, Any]:
    k = metrics.k
    return {
        f"precision_at_{k}": round(metrics.precision, 4),
        f"recall_at_{k}": round(metrics.recall, 4),
        f"ndcg_at_{k}": round(metrics.ndcg, 4),
        f"hit_rate_at_{k}": round(metrics.hit_rate, 4),
        "coverage": round(metrics.coverage, 4),
        "users": metrics.users,
    }


def _score_params(estimator: RecommenderBase) -> set[str]:
    import inspect

    return set(inspect.signature(estimator.score).parameters)
