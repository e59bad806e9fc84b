"""Explanation-guided mining (seed 002): patches, transactions, hierarchical rules, filter zeroing."""
import numpy as np
import pytest
import torch
from torch import nn

from conftest import hook_count, state_copy
from nnrules.evaluation import zero_filters
from nnrules.miners.patches import PatchMiner, candidate_patches, mine_transactions, relevant_patches, shared_sets


def test_candidate_patches_find_the_hot_regions_in_order():
    yy, xx = np.mgrid[:40, :40]
    heat = 2 * np.exp(-((yy - 10) ** 2 + (xx - 28) ** 2) / 8) + np.exp(-((yy - 30) ** 2 + (xx - 8) ** 2) / 8)
    boxes = candidate_patches(heat, size=6, k=2, m=2000, rng=np.random.default_rng(0))
    centres = [(t + 2.5, l + 2.5) for t, l in boxes]
    assert abs(centres[0][0] - 10) <= 1 and abs(centres[0][1] - 28) <= 1  # the stronger blob first
    assert abs(centres[1][0] - 30) <= 1 and abs(centres[1][1] - 8) <= 1  # then, with it zeroed, the other
    with pytest.raises(ValueError, match="patch size"):
        candidate_patches(heat, size=41, k=1, m=5, rng=np.random.default_rng(0))


class RegionNet(nn.Module):
    """Class 0's logit is 40 × the mean of the top-left 4×4 block − 35; class 1's is 0."""

    def forward(self, x):
        s = x[:, 0, :4, :4].mean((1, 2)) * 40 - 35
        return torch.stack([s, torch.zeros_like(s)], 1)


def test_relevant_patches_stop_when_the_score_settles():
    img = torch.ones(1, 8, 8)
    model = RegionNet()
    # p1 hits the region (probability drops), p2 and p3 do not: p2 differs from p1's score by more than τ,
    # p3 from p2's by nothing → stop after p3; p4 is never reached
    boxes = [(0, 0), (4, 4), (5, 5), (6, 6)]
    assert relevant_patches(model, img, boxes, 2, cls=0, tau=0.1) == [(0, 0), (4, 4), (5, 5)]
    assert relevant_patches(model, img, [(4, 4), (0, 0)], 2, cls=0, tau=0.1) == [(4, 4)]  # irrelevant first


def planted_transactions(seed=0, n_per_class=200, d=30, classes=3):
    """Class c's patches carry its planted filter set with probability 0.9; {0, 1} is shared by classes 0
    and 1; every row has some random filters too."""
    rng = np.random.default_rng(seed)
    planted = {0: {5, 6}, 1: {9, 10, 11}, 2: {20}}
    rows = []
    for c in range(classes):
        for _ in range(n_per_class):
            t = np.zeros(d + classes, bool)
            t[rng.choice(np.arange(22, d), 3, replace=False)] = True
            if rng.random() < 0.9:
                t[sorted(planted[c])] = True
            if c in (0, 1) and rng.random() < 0.8:
                t[[0, 1]] = True
            t[d + c] = True
            rows.append(t)
    return np.array(rows), planted, d


def test_hierarchical_mining_recovers_planted_class_and_shared_filters():
    T, planted, d = planted_transactions()
    rules = mine_transactions(T, d, min_support=0.5, q=10)
    for c, s in planted.items():
        mine = rules[rules["class"] == c]
        assert frozenset(s) in set(mine["filters"])
        # the planted set has (near-)perfect confidence: it never occurs for another class
        assert mine.loc[mine["filters"] == frozenset(s), "confidence"].iloc[0] == 1.0
        assert all(f < 22 for fs in mine["filters"] for f in fs)  # no noise filter is frequent (3 of 8 < 0.5)
    # {0, 1} is frequent in classes 0 and 1 but its confidence is ~0.5, so it needs a larger q to be listed
    shared = shared_sets(mine_transactions(T, d, min_support=0.5, q=40))
    row = shared[shared["filters"] == frozenset({0, 1})]
    assert len(row) == 1 and row["classes"].iloc[0] == [0, 1]
    # supports: within the class, then over all transactions
    r = rules[(rules["class"] == 1) & (rules["filters"] == frozenset({9, 10, 11}))].iloc[0]
    has = T[:, [9, 10, 11]].all(1)
    assert r["support_class"] == has[200:400].mean() and r["support"] == (has & T[:, d + 1]).mean()
    assert list(r["rows"]) == list(np.flatnonzero(has & T[:, d + 1]))


def test_top_q_and_bad_input():
    T, _, d = planted_transactions()
    assert (mine_transactions(T, d, 0.3, q=2).groupby("class").size() == 2).all()
    assert mine_transactions(T, d, 0.3, q=50, max_len=2)["filters"].map(len).max() == 2
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        mine_transactions(T, d, 0.0, q=2)
    with pytest.raises(ValueError, match="one class item"):
        mine_transactions(T[:, :-1], d, 0.5, q=2)


@pytest.mark.slow
def test_on_digits_cnn_found_filters_matter_more_than_random(digits):
    x, y = digits.test.tensors
    before = state_copy(digits.model)
    pm = PatchMiner(layer="relu2", size=4, k=3, m=50, tau=0.1, top=10, min_support=0.5, q=10).fit(digits.model, x)
    assert hook_count(digits.model) == 0 and all(torch.equal(before[k], v) for k, v in digits.model.state_dict().items())
    assert pm.transactions_.shape == (len(pm.patches_), 32 + 10)
    assert (pm.transactions_[:, :32].sum(1) == 10).all() and (pm.transactions_[:, 32:].sum(1) == 1).all()
    assert pm.patches_["image"].nunique() == len(x) and set(pm.rule_table_["class"]) == set(range(10))
    # each transaction's filters are the top-10 responses in its window (eq. 2)
    top = np.argsort(-pm.responses_[0])[:10]
    assert set(np.flatnonzero(pm.transactions_[0, :32])) == set(top)
    filters = {c: pm.filters_for(c) for c in range(10)}
    iv = zero_filters(digits.model, "relu2", filters, digits.test, n_random=20)
    # seed 002 Table 1: zeroing the found filters hurts more than zeroing as many random ones
    assert iv["acc_after"].mean() < iv["acc_random"].mean() - 0.03
    assert (iv["acc_after"] <= iv["acc_random"]).sum() >= 7
    assert hook_count(digits.model) == 0
    avg = pm.weighted_average(0)
    assert avg.shape == (1, 4, 4) and pm.patch_images(0).shape[1:] == (1, 4, 4)
    rs = pm.to_ruleset(digits.class_names)
    assert len(rs) == len(pm.rules_) and rs.tail_names[0] == "relu2:c0" and rs.head_layer == "output"


def test_patch_miner_bad_input(digits):
    x = digits.test.tensors[0][:4]
    with pytest.raises(ValueError, match="no spatial maps"):
        PatchMiner(layer="relu3", size=4).fit(digits.model, x)
    with pytest.raises(ValueError, match="min_support"):
        PatchMiner(min_support=0, size=4).fit(digits.model, x)
    with pytest.raises(ValueError, match="only 32"):
        PatchMiner(layer="relu2", top=40, size=4).fit(digits.model, x)
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        PatchMiner(size=4).fit(digits.model, x[0])
    with pytest.raises(ValueError, match="patch size"):
        PatchMiner(layer="relu2", size=20).fit(digits.model, x)
    with pytest.raises(ValueError, match="channels of 'relu2'"):
        zero_filters(digits.model, "relu2", {0: [40]}, digits.test)


def test_zeroing_curves_mined_filters_beat_random_on_digits(digits):
    """Seed 002's evaluation as curves: the mined filters' zeroing hurts their class more than random
    filters of the same count; the single-filter ablation ranking puts the worst single filter first."""
    from nnrules.evaluation import ablation_ranking, activation_ranking, zeroing_curves
    from nnrules.miners.patches import PatchMiner

    x = digits.train.tensors[0][:200]
    pm = PatchMiner(layer="relu2", size=4, top=5, min_support=0.5, q=10).fit(digits.model, x)
    classes = sorted(set(pm.patches_["class"]))
    ranking = pm.filter_ranking(classes[0])
    assert sorted(ranking) == list(range(pm.n_filters_))
    assert set(ranking[: len(pm.filters_for(classes[0]))]) == set(pm.filters_for(classes[0]))
    rankings = {"mined": {c: pm.filter_ranking(c) for c in classes},
                "top-mean": activation_ranking(digits.model, "relu2", digits.test)}
    df = zeroing_curves(digits.model, "relu2", rankings, digits.test, fractions=(0.2, 0.5), n_random=3)
    mean = df.groupby(["method", "fraction"])["accuracy"].mean()
    assert mean["mined", 0.5] < mean["random", 0.5] - 0.03 and mean["mined", 0.2] < mean["random", 0.2]
    assert set(df["n_filters"]) == {0, round(0.2 * 32), 16}
    abl = ablation_ranking(digits.model, "relu2", digits.test)
    c = classes[0]
    single = zeroing_curves(digits.model, "relu2", {"a": {c: abl[c][:1]}, "b": {c: abl[c][-1:]}}, digits.test,
                            fractions=(1 / 32,), n_random=0)
    acc = single.set_index("method")["accuracy"]
    assert acc["a"] <= acc["b"]
    with pytest.raises(ValueError, match="labels"):
        zeroing_curves(digits.model, "relu2", rankings, digits.test.tensors[0])
    assert len(zeroing_curves(digits.model, "relu2", rankings, digits.test.tensors[0], fractions=(0.5,),
                              n_random=1, labels="predictions")) > 0
