"""The contract every miner follows (scikit-learn's, with rules as the result).

- Hyperparameters are explicit ``__init__`` keywords, stored unchanged and declared in ``params``
  (:class:`~nnrules.params.Param`): ``get_params``/``set_params``/``sklearn.base.clone`` and the repr work.
- ``validate()`` checks them (``fit`` calls it; the app calls it before slow work).
- ``fit(...)`` returns ``self``; learned state ends in ``_``; ``rules_`` is a :class:`~nnrules.data.RuleSet`
  (a miner over several layer pairs keeps one per pair in ``rulesets_``, output side first, and
  ``rules_`` is the first); NeuroChains, which finds a sub-network rather than rules, keeps a
  :class:`~nnrules.miners.neurochains.Chain` in ``chain_`` with the same views.
- Before ``fit``, learned attributes raise :class:`NotFittedError` naming the method to call.
- ``to_frame()``, ``to_json()`` and ``to_flow()`` (for the Sankey and table views) read the result.
"""
from __future__ import annotations

from typing import ClassVar

from ..data.rules import RuleSet
from ..params import NotFittedError, Parametrized, check_fitted
from .flow import Flow

__all__ = ["Miner", "NotFittedError", "check_fitted"]


class Miner(Parametrized):
    """Base of every miner: see the module docstring for the contract.

    ``fits_on`` says what ``fit`` takes: ``"pair"`` (head and tail binary matrices of one layer pair),
    ``"chain"`` (recorded activations and a list of layers) or ``"model"`` (a model and its inputs);
    :func:`~nnrules.miners.flow.trace` uses it."""

    fits_on: ClassVar[str] = "pair"

    def _rules(self) -> RuleSet:
        check_fitted(self, "rules_")
        return self.rules_

    def to_frame(self):
        """The rules, one row each (see :meth:`RuleSet.to_frame`)."""
        return self._rules().to_frame()

    def to_json(self) -> str:
        """The rules as JSON (see :meth:`RuleSet.to_json`)."""
        return self._rules().to_json()

    def to_flow(self):
        """The result as a :class:`~nnrules.miners.flow.Flow` for the shared views."""
        rs = self._rules()
        return Flow([rs.head_layer, rs.tail_layer], [rs])
