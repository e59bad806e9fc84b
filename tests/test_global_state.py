"""nnrules leaves a user's global state alone: the torch and numpy RNGs, torch's thread count, hooks."""
import numpy as np
import pytest
import torch

import nnrules
from nnrules import ERIC, Binarizer, ExplaiNN, NeuroChains, PatchMiner
from nnrules.attribution import attribute, maximize
from nnrules.data.synthetic import planted_rules
from nnrules.evaluation import model_randomization, pixel_flipping

from conftest import hook_count


def _calls(digits):
    x = digits.test.tensors[0][:24]
    acts = nnrules.record(digits.model, digits.test, ["relu3"], progress=False)
    l1 = nnrules.record(digits.model, digits.test, ["relu3"], reduce="l1", progress=False)
    bins = Binarizer("mean").fit_transform(acts)
    return {
        "zoo.load": lambda: nnrules.zoo.load("digits-cnn"),
        "record": lambda: nnrules.record(digits.model, digits.test, ["relu2"], progress=False),
        "ExplaiNN.fit": lambda: ExplaiNN().fit(bins["output"], bins["relu3"]),
        "trace": lambda: nnrules.trace(acts, ["relu3"]),
        "ERIC.fit": lambda: ERIC(depth=2).fit(l1, ["relu3"]),
        "PatchMiner.fit": lambda: PatchMiner(layer="relu2", size=3, m=5, max_len=2).fit(digits.model, x),
        "NeuroChains.fit": lambda: NeuroChains(steps=10, finetune_steps=2).fit(digits.model, x[:4]),
        "attribute(smoothgrad)": lambda: attribute(digits.model, x[:2], 3, method="smoothgrad", nt_samples=4),
        "attribute(lrp)": lambda: attribute(digits.model, x[:2], 3, method="lrp"),
        "maximize": lambda: maximize(digits.model, "relu3", [3], example=x[:1], steps=5, jitter=1),
        "pixel_flipping": lambda: pixel_flipping(digits.model, x[:2], "random", 3, steps=2),
        "model_randomization": lambda: model_randomization(digits.model, x[:2], 3),
        "planted_rules": lambda: planted_rules(n=200, n_rules=3),
    }


def test_public_calls_leave_the_rngs_and_threads_alone(digits):
    calls = _calls(digits)
    threads = torch.get_num_threads()
    for name, call in calls.items():
        torch.manual_seed(12345)
        np.random.seed(54321)
        torch_state, np_state = torch.get_rng_state(), np.random.get_state()
        call()
        assert torch.equal(torch.get_rng_state(), torch_state), f"{name} changed torch's global RNG"
        after = np.random.get_state()
        assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:], \
            f"{name} changed numpy's global RNG"
        assert torch.get_num_threads() == threads, f"{name} changed torch's thread count"
        assert hook_count(digits.model) == 0, f"{name} left a hook on the model"
    assert len(calls) == 13


@pytest.mark.parametrize("seeded", [0, 7])
def test_seeded_calls_are_reproducible_whatever_the_global_seed(digits, seeded):
    """Results depend on the call's own seed, not on the global RNG a user has set."""
    x = digits.test.tensors[0][:4]
    out = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        out.append(NeuroChains(steps=10, finetune_steps=0, seed=seeded).fit(digits.model, x).kept_)
    assert out[0].equals(out[1])
