import math

import numpy as np
import pytest

from nnrules import ExplaiNN, Rule
import nnrules.miners.explainn._counts as K
from nnrules.miners.explainn._reference import best_rule_reference, codelength_reference, lpc, rule_cost_reference
from nnrules.data.bits import pack_columns
from nnrules.miners.explainn.mdl import log_binom, parametric_complexity, universal_int
from nnrules.data.synthetic import planted_rules

# Check values from shared/EXPLAINN-NOTES.md §2.1
LN = {1: 1.518567, 2: 2.518567, 3: 3.767979, 4: 4.518567, 5: 5.337159, 10: 7.364973, 16: 8.518567,
      100: 12.880434, 1000: 17.321872}
LPC = {0: 0.0, 1: 1.0, 2: 1.321928, 5: 1.811635, 10: 2.220397, 100: 3.723554, 1000: 5.332823,
       10_000: 6.977270, 1_000_000: 10.292300}


@pytest.mark.parametrize("z, value", LN.items())
def test_universal_integer_code(z, value):
    assert universal_int(z) == pytest.approx(value, abs=1e-6)


@pytest.mark.parametrize("n, value", LPC.items())
def test_parametric_complexity(n, value):
    assert parametric_complexity(n) == pytest.approx(value, abs=1e-6)


def test_parametric_complexity_matches_its_definition():
    for n in (3, 7, 50, 300):
        assert parametric_complexity(n) == pytest.approx(lpc(n), abs=1e-9)


def test_log_binomial():
    assert log_binom(10, 3) == pytest.approx(math.log2(120), abs=1e-9)
    assert log_binom(7, 0) == 0.0 and log_binom(7, 7) == 0.0


def _kernel_cost(head, tail, X, Y):
    n = head.shape[0]
    hw, tw = pack_columns(head), pack_columns(tail)
    total = head.sum() + tail.sum()
    return K.best_rule(np.array(X, dtype=np.int64), np.array(Y, dtype=np.int64), hw, tw,
                       head.sum(0).astype(np.int64), tail.sum(0).astype(np.int64),
                       -np.log2(head.sum(0) / total), -np.log2(tail.sum(0) / total), n, K.tables(n),
                       K.new_scratch(n, hw.shape[1]))


def test_hand_computed_rule_cost():
    # n = 4 samples; head item x on rows {0,1,2}; tail item y on rows {0,1}. Rule {x} →(l=1) {y} (k=1):
    # A = {0,1,2}, H = {0,1}, no error cells, y fully covered inside A.
    head = np.array([[1], [1], [1], [0]], dtype=bool)
    tail = np.array([[1], [1], [0], [0]], dtype=bool)
    l_n1 = math.log2(2.865064)                       # L_N(1) for |X|, |Y| and l
    items = -math.log2(3 / 5) - math.log2(2 / 5)     # supports 3 and 2 out of 5 item occurrences
    lpc3 = math.log2(1 + 4 / 9 + 4 / 9 + 1)          # Σ_k C(3,k)(k/3)^k((3-k)/3)^(3-k)
    lpc2, lpc1 = math.log2(2.5), 1.0                 # L_pc(|H|·|Y|) = L_pc(2), L_pc(|A∖H|·|Y|) = L_pc(1)
    data = math.log2(3)                              # lb(|A|, |H|) = log2 C(3, 2); error matrices: 0
    expected = 3 * l_n1 + items + lpc3 + lpc2 + lpc1 + data + 0.0  # + lb(4, 0) for y outside A
    assert rule_cost_reference(head, tail, [0], [0], 1, 1) == pytest.approx(expected, abs=1e-9)
    cost, l, k, A, H = _kernel_cost(head, tail, [0], [0])
    assert (l, k, A, H) == (1, 1, 3, 2)
    assert cost == pytest.approx(expected, abs=1e-9)


def test_best_rule_kernel_matches_reference_on_random_rules():
    rng = np.random.default_rng(0)
    head, tail = rng.random((120, 6)) < 0.35, rng.random((120, 5)) < 0.4
    tail[:, :3] |= head[:, :1] & (rng.random((120, 1)) < 0.8)
    for X, Y in [([0], [0]), ([0, 1, 2], [0, 1, 2]), ([1, 3, 4, 5], [2, 4]), ([0, 2], [0, 1, 2, 3, 4])]:
        cost, l, k, _, _ = _kernel_cost(head, tail, X, Y)
        ref_cost, ref_l, ref_k = best_rule_reference(head, tail, X, Y)
        assert cost == pytest.approx(ref_cost, abs=1e-8)
        assert rule_cost_reference(head, tail, X, Y, l, k) == pytest.approx(ref_cost, abs=1e-8)


def test_fitted_codelength_matches_reference_from_scratch():
    d = planted_rules(n=600, n_rules=6, heads="exclusive", noise=0.002, seed=3)
    m = ExplaiNN().fit(d.head, d.tail)
    assert len(m.rules_) > 0
    assert m.codelength_ == pytest.approx(codelength_reference(d.head, d.tail, list(m.rules_)), abs=1e-6)
    assert m.baseline_codelength_ == pytest.approx(codelength_reference(d.head, d.tail, []), abs=1e-6)
    assert m.codelength_ < m.baseline_codelength_


def test_adding_a_true_rule_decreases_the_codelength():
    d = planted_rules(n=2000, n_rules=3, heads="exclusive", noise=0.0, seed=4)
    X, Y = d.rules[0]
    base = codelength_reference(d.head, d.tail, [])
    _, l, k = best_rule_reference(d.head, d.tail, X, Y)
    with_rule = codelength_reference(d.head, d.tail, [Rule(X, Y, l, k, 0, 0)])
    assert with_rule < base - 50


def test_random_data_never_beats_its_entropy_and_yields_no_rules():
    rng = np.random.default_rng(5)
    head, tail = rng.random((3000, 12)) < 0.2, rng.random((3000, 15)) < 0.3
    m = ExplaiNN(theta=0.0).fit(head, tail)
    p = np.concatenate([head.mean(0), tail.mean(0)])
    entropy = 3000 * np.sum(-p * np.log2(p) - (1 - p) * np.log2(1 - p))  # empirical, a lower bound
    assert len(m.rules_) == 0
    assert m.codelength_ == pytest.approx(m.baseline_codelength_)
    assert m.codelength_ >= entropy


def test_bit_sliced_and_row_wise_histograms_agree():
    """best_rule fills its (head count × tail count) histogram bit-sliced for small rules and row by row for
    large ones; both give the same cells for heads and tails of 1..63 items, over a ragged last word."""
    rng = np.random.default_rng(5)
    n = 777
    head, tail = rng.random((n, 70)) < 0.3, rng.random((n, 70)) < 0.2
    hw, tw = pack_columns(head), pack_columns(tail)
    cnt_h, cnt_t, touched, hp, tp = K.new_scratch(n, hw.shape[1])
    for nx, ny in ((1, 1), (3, 2), (7, 7), (8, 15), (31, 4), (63, 63)):
        X = np.sort(rng.choice(70, nx, replace=False)).astype(np.int64)
        Y = np.sort(rng.choice(70, ny, replace=False)).astype(np.int64)
        h1, g1 = np.zeros((nx + 1, ny + 1), np.int64), np.zeros((ny, nx + 1), np.int64)
        h2, g2 = h1.copy(), g1.copy()
        K._hist_bits(X, Y, hw, tw, hp, tp, h1, g1)
        K._hist_rows(X, Y, hw, tw, cnt_h, cnt_t, touched, h2, g2)
        a, b = head[:, X].sum(1), tail[:, Y].sum(1)
        want = np.zeros_like(h1)
        np.add.at(want, (a, b), 1)
        want[0] = 0  # rows with no head item are never in A: not counted by either path
        h2[0] = 0
        assert np.array_equal(h1, want) and np.array_equal(h2, want), (nx, ny)
        for j, y in enumerate(Y):
            gj = np.bincount(a[tail[:, y]], minlength=nx + 1)
            assert np.array_equal(g1[j, 1:], gj[1:]) and np.array_equal(g2[j, 1:], gj[1:])
        assert not cnt_h.any() and not cnt_t.any()  # the row-wise scratch is left clean
