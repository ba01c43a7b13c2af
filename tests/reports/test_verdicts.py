"""The verdict rule on hand-made results with known answers."""

import pytest

from selfexplain.estimands import Estimate
from selfexplain.reports.verdicts import (
    DOES_NOT_HOLD,
    HOLDS,
    NOT_REPRODUCED,
    REPRODUCED,
    UNDETERMINED,
    judge,
    paper_threshold,
)


def _p(diff, low, high, n=100):
    return Estimate(0.1, 0.1 + diff, diff, low, high, 0.01, n, "bootstrap")


@pytest.mark.parametrize("result,threshold,expected", [
    (_p(0.20, 0.10, 0.30), 0.115, (REPRODUCED, "interval above 0")),
    (_p(0.05, 0.01, 0.09), 0.115, (REPRODUCED, "interval above 0; smaller than the paper's +0.115")),
    (_p(0.00, -0.05, 0.05), 0.115, (NOT_REPRODUCED, "interval below +0.115: a rise that large is ruled out")),
    (_p(-0.10, -0.20, -0.01), 0.115, (NOT_REPRODUCED, "interval below +0.115: a rise that large is ruled out")),
    (_p(0.05, -0.05, 0.15), 0.115, (UNDETERMINED, "interval includes 0 and +0.115")),
    (_p(0.30, 0.20, 0.40, n=9), 0.115, (UNDETERMINED, "too few valid pairs (9)")),
    (Estimate(None, 0.2, None, None, None, None, 40, "bootstrap"), 0.115, (UNDETERMINED, "no valid pairs")),
])
def test_judge_follows_the_stated_rule(result, threshold, expected):
    assert judge(result, threshold) == expected


def test_a_rise_needs_its_holm_adjusted_p_and_a_ruled_out_rise_needs_power():
    rise = _p(0.20, 0.01, 0.30)
    assert judge(rise, 0.115, adjusted_p=0.049, tests=51)[0] == REPRODUCED
    assert judge(rise, 0.115, adjusted_p=0.075, tests=51) == (
        UNDETERMINED, "interval above 0, but Holm-adjusted p = 0.075 over 51 tests")
    # Table 5's case: a negative estimate whose interval lies below the paper's +0.201, from a study that could
    # only detect +0.283: underpowered, so undetermined, never "not reproduced".
    flat = _p(-0.05, -0.20, 0.15)
    assert judge(flat, 0.201, detectable=0.283) == (
        UNDETERMINED, "interval below +0.201, but underpowered: the detectable rise +0.283 exceeds it")
    assert judge(flat, 0.201, detectable=0.15)[0] == NOT_REPRODUCED


def test_judge_words_for_conditions_beyond_the_paper():
    assert judge(_p(0.2, 0.1, 0.3), 0.1, beyond=True)[0] == HOLDS
    assert judge(_p(0.0, -0.02, 0.02), 0.1, beyond=True)[0] == DOES_NOT_HOLD


def test_paper_threshold_is_the_weaker_of_the_two_models():
    assert paper_threshold(("table 4 vs none", "attribution")) == pytest.approx(0.115)  # 7B +0.180, 13B +0.115
    assert paper_threshold(("table 5", "counterfactual")) == pytest.approx(0.152)  # 7B fell: only 13B's rise
    assert paper_threshold(("nothing", "x")) is None


def test_too_few_valid_pairs_is_undetermined_however_many_samples():
    assert judge(_p(0.3, 0.2, 0.4, n=600), 0.1, valid_pairs=9) == (UNDETERMINED, "too few valid pairs (9)")
