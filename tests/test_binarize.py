import numpy as np
import pytest

import nnrules
from nnrules import Binarizer


@pytest.fixture
def acts(tiny, tiny_data):
    return nnrules.record(tiny, tiny_data, ["conv", "fc"], progress=False)


def test_methods(acts):
    x = acts["fc"]
    np.testing.assert_array_equal(nnrules.binarize(acts, "positive")["fc"].to_dense(), x > 0)
    np.testing.assert_array_equal(nnrules.binarize(acts, "mean")["fc"].to_dense(), x > x.mean(0))
    np.testing.assert_array_equal(nnrules.binarize(acts, "threshold", value=0.2)["fc"].to_dense(), x > 0.2)
    q = nnrules.binarize(acts, "quantile", q=0.25)["fc"].to_dense()
    assert np.all(np.abs(q.mean(0) - 0.25) <= 1 / len(x) + 1e-9)
    top = nnrules.binarize(acts, "topk", k=2)["fc"].to_dense()
    assert (top.sum(1) == 2).all()
    assert np.all(x[top].reshape(-1, 2).min(1) >= np.sort(x, 1)[:, -2] - 1e-7)


def test_output_layer_one_hot(acts):
    b = nnrules.binarize(acts)
    out = b["output"].to_dense()
    assert (out.sum(1) == 1).all() and np.array_equal(out.argmax(1), acts.predictions)
    lab = Binarizer(output="label").fit_transform(acts)["output"].to_dense()
    assert np.array_equal(lab.argmax(1), acts.labels)
    assert b["fc"].names == acts.unit_names["fc"] and b["fc"].layer == "fc"


def test_thresholds_learned_on_one_set_apply_to_another(acts):
    rng = np.random.default_rng(0)
    train, other = rng.normal(size=(100, 5)), rng.normal(loc=1.0, size=(50, 5))
    b = Binarizer("mean").fit(train)
    np.testing.assert_array_equal(b.transform(other).to_dense(), other > train.mean(0))


@pytest.mark.parametrize("kw, match", [({"method": "quantile", "q": 1.5}, "q must"),
                                       ({"method": "topk", "k": 0}, "k must"),
                                       ({"method": "topk", "k": 99}, "exceeds"),
                                       ({"method": "threshold", "value": float("nan")}, "finite"),
                                       ({"method": "median"}, "method must"),
                                       ({"output": "truth"}, "output must")])
def test_bad_parameters(acts, kw, match):
    with pytest.raises(ValueError, match=match):
        Binarizer(**kw).fit_transform(acts)


def test_bad_arrays():
    with pytest.raises(ValueError, match="NaN"):
        Binarizer().fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="empty"):
        Binarizer().fit(np.zeros((0, 3)))
