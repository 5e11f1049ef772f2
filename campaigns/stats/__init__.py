"""Statistics for decisions (pure numpy/scipy): numbers in, frozen dataclasses out.

- `sequential`: the normal-mixture martingale and confidence sequence (always valid under peeking)
- `compare`: treatment vs comparison per metric, stratified by stage; caps on absolute rates
- `srm`: sample-ratio mismatch (chi-square, p < 0.001)
- `quantiles`: quantiles from fixed histograms
"""

from campaigns.stats.compare import Arms, CapCheck, Comparison, compare, rate_above_cap, stratified
from campaigns.stats.quantiles import histogram_quantile
from campaigns.stats.sequential import cs_halfwidth, log_evalue_one_sided, log_evalue_two_sided, mixture_rho
from campaigns.stats.srm import SRM_P, SrmResult, srm_test

__all__ = [
    "SRM_P",
    "Arms",
    "CapCheck",
    "Comparison",
    "SrmResult",
    "compare",
    "cs_halfwidth",
    "histogram_quantile",
    "log_evalue_one_sided",
    "log_evalue_two_sided",
    "mixture_rho",
    "rate_above_cap",
    "srm_test",
    "stratified",
]
