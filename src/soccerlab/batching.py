"""Batch-invariant policy evaluation.

PyTorch's CPU kernels are not batch-invariant: with torch 2.13 + MKL a linear layer takes
another GEMM path below 4 rows and for row counts that do not fill its blocks, and vectorised
activations compute the tail elements in scalar code, so a row's output differs in the last bits
with the number of rows computed alongside it (measured: every row of an SB3 PPO policy for
batches of 2..32). A walking robot turns such bits into other episodes. Padding every forward
pass with zero rows to a multiple of ``POLICY_BATCH_MULTIPLE`` makes each row's result
independent of the batch (checked on SB3 MLP policies and booster_gym's T1 walker, 1-300 rows).
"""

from __future__ import annotations

import numpy as np

#: Policy inputs are padded with zero rows to a multiple of this.
POLICY_BATCH_MULTIPLE = 16


def pad_rows(x: np.ndarray, multiple: int = POLICY_BATCH_MULTIPLE) -> np.ndarray:
    """``x`` (M, ...) with zero rows appended up to a multiple of ``multiple`` rows."""
    rows = -(-x.shape[0] // multiple) * multiple
    if rows == x.shape[0]:
        return x
    out = np.zeros((rows, *x.shape[1:]), dtype=x.dtype)
    out[: x.shape[0]] = x
    return out
