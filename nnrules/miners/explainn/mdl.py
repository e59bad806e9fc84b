"""MDL code lengths (bits) for ExplaiNN (seed 000 Sec. 2.2), as numba functions.

- ``log_binom(n, k)`` = log2 C(n, k).
- ``universal_int(z)`` = L_N(z), Rissanen's universal code for integers z >= 1 with c0 = 2.865064;
  L_N(0) := 0 is used only for an empty model (|M| = 0).
- ``parametric_complexity(n)`` = L_pc(n) = log2 Σ_k C(n,k) (k/n)^k ((n-k)/n)^(n-k), the regret of the
  binomial NML code. Computed exactly as log2 Σ_{k=0}^{n} n!/((n-k)! n^k) (an O(n) product-sum whose
  terms fall fast; truncated once they no longer change the double), tabulated up to ``LPC_TABLE_MAX``;
  above that the asymptotic expansion log2(sqrt(nπ/2) + 2/3 + sqrt(2π)/(24 sqrt n) - 4/(135 n)) is used,
  which agrees to better than 1e-10 there.
"""
from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["C0", "log_binom", "universal_int", "parametric_complexity", "lpc_table", "LPC_TABLE_MAX"]

C0 = 2.865064
LOG2_C0 = math.log2(C0)
LPC_TABLE_MAX = 10_000
_LN2 = math.log(2.0)


@numba.njit(cache=True)
def _log_binom(n: int, k: int) -> float:
    """log2 C(n, k) in bits, 0 for k outside (0, n) (the kernels' form)."""
    if k <= 0 or k >= n:
        return 0.0
    return (math.lgamma(n + 1.0) - math.lgamma(k + 1.0) - math.lgamma(n - k + 1.0)) / _LN2


def log_binom(n: int, k: int) -> float:
    """log2 C(n, k) in bits (0 for k in {0, n}); integers with ``0 <= k <= n``."""
    if k < 0 or k > n:
        raise ValueError(f"log_binom needs integers 0 <= k <= n, got n={n}, k={k}")
    return float(_log_binom(n, k))


def universal_int(z: int) -> float:
    """L_N(z) = log2 c0 + log2 z + log2 log2 z + … (positive terms only); L_N(0) := 0 (an empty model)."""
    if isinstance(z, bool) or not isinstance(z, (int, np.integer)) or z < 0:
        raise ValueError(f"universal_int needs an integer z >= 0, got {z!r}")
    return float(_universal_int(int(z)))


@numba.njit(cache=True)
def _universal_int(z: int) -> float:
    """:func:`universal_int` for the kernels (no checks)."""
    if z <= 0:
        return 0.0
    total = LOG2_C0
    x = float(z)
    while True:
        x = math.log2(x)
        if x <= 0.0:
            break
        total += x
    return total


@numba.njit(cache=True)
def _lpc_exact(n: int) -> float:
    if n <= 0:
        return 0.0
    total = 1.0
    term = 1.0
    for k in range(1, n + 1):
        term *= (n - k + 1) / n
        total += term
        if term < total * 1e-18:
            break
    return math.log2(total)


@numba.njit(cache=True)
def _lpc_asymptotic(n: float) -> float:
    return math.log2(math.sqrt(n * math.pi / 2.0) + 2.0 / 3.0
                     + math.sqrt(2.0 * math.pi) / (24.0 * math.sqrt(n)) - 4.0 / (135.0 * n))


@numba.njit(cache=True)
def _build_table(nmax: int) -> np.ndarray:
    out = np.empty(nmax + 1)
    for n in range(nmax + 1):
        out[n] = _lpc_exact(n)
    return out


_TABLE: np.ndarray | None = None


def lpc_table() -> np.ndarray:
    """L_pc(0..LPC_TABLE_MAX), built once per process."""
    global _TABLE
    if _TABLE is None:
        _TABLE = _build_table(LPC_TABLE_MAX)
    return _TABLE


@numba.njit(cache=True)
def lpc(n: int, table: np.ndarray) -> float:
    """L_pc(n) from the table, or the asymptotic expansion past its end."""
    if n < table.shape[0]:
        return table[n]
    return _lpc_asymptotic(float(n))


def parametric_complexity(n: int) -> float:
    """L_pc(n) in bits (see the module docstring)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return float(lpc(int(n), lpc_table()))
