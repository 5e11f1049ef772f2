"""Statistics for decisions (pure numpy/scipy): numbers in, frozen dataclasses out.

- `sequential`: the normal-mixture martingale and confidence sequence (always valid under peeking)
- `compare`: treatment vs comparison per metric, stratified by stage (intervals, lift)
- `rates`: exact e-values for rare events: guardrails (rate ratio) and absolute caps
- `lift`: the primary metric's one-sided harm and benefit mixtures and the lift interval they imply
- `srm`: sequential sample-ratio mismatch (Dirichlet-multinomial e-value, stages combined)
- `quantiles`: quantiles from fixed histograms
"""

from campaigns.stats.compare import Arms, Comparison, compare, stratified
from campaigns.stats.lift import LiftTest, lift_test, relative_sequence
from campaigns.stats.quantiles import histogram_quantile
from campaigns.stats.rates import (
    RateTest,
    cap_test,
    log_evalue_above_cap,
    log_evalue_rate_ratio,
    rate_ratio_test,
)
from campaigns.stats.sequential import cs_halfwidth, log_evalue_one_sided, log_evalue_two_sided, mixture_rho
from campaigns.stats.srm import SRM_ALPHA, SRM_P, SrmResult, srm_test

__all__ = [
    "SRM_ALPHA",
    "SRM_P",
    "Arms",
    "Comparison",
    "LiftTest",
    "RateTest",
    "SrmResult",
    "cap_test",
    "compare",
    "cs_halfwidth",
    "histogram_quantile",
    "lift_test",
    "log_evalue_above_cap",
    "log_evalue_one_sided",
    "log_evalue_rate_ratio",
    "log_evalue_two_sided",
    "mixture_rho",
    "rate_ratio_test",
    "relative_sequence",
    "srm_test",
    "stratified",
]
