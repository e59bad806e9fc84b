"""Why a rule matters, in one sentence: what zeroing its tail units does to its head, next to zeroing as many
random units of the same layer (:func:`nnrules.evaluation.rule_effect`)."""
from __future__ import annotations

import pandas as pd

from nnrules.miners.flow import Flow

from .errors import UserInputError
from .loading import LoadedModel

__all__ = ["effect_in_words"]


def effect_in_words(loaded: LoadedModel, flow: Flow | None, rules: pd.DataFrame, rule_id: int,
                    n_random: int = 10) -> str:
    """The effect of rule ``rule_id`` (a row of ``rules``) in one sentence; on the zoo model's test split (samples
    no rule was mined on), else on the mining data (said so)."""
    from nnrules.evaluation.rule_effect import rule_effect

    if flow is None or rules.empty:
        raise UserInputError("mine rules first: the effect is measured for a rule")
    if not 0 <= rule_id < len(rules):
        raise UserInputError(f"no rule {rule_id}; rule ids run from 0 to {len(rules) - 1}")
    row = rules.iloc[rule_id]
    model, x, y = loaded.need()
    data, where = (loaded.held_out, "held-out samples") if loaded.held_out is not None else \
        ((x, y), "mining samples (no held-out split for this model)")
    try:
        e = rule_effect(model, flow.rulesets[int(row["pair"])], int(row["rule"]), data, n_random=n_random)
    except ValueError as err:
        raise UserInputError(str(err)) from err
    unit = "unit" if e["n_tail"] == 1 else "units"
    return (f"zeroing its {e['n_tail']} tail {unit} drops the {e['measure']} from {e['before']:.3g} to "
            f"{e['after']:.3g} (by {e['drop']:.3g}); as many random units of {row['tail_layer']} drop it by "
            f"{e['random_drop']:.3g} ± {e['random_drop_std']:.2g} ({e['n_random']} draws) — on {e['samples']} "
            f"{where}")
