"""The settings of ``soccerlab search``, apart from the search itself.

The CLI builds its parser (and ``--help``) from these defaults; this module imports nothing
heavy, so that ``soccerlab --help`` does not pay for torch.
"""

from __future__ import annotations

from dataclasses import dataclass

SPACES = ("last-layer", "task")
#: Default search seeds: well away from the usual evaluation seeds (0-9 and the like).
DEFAULT_SEEDS = (1000, 1001, 1002, 1003, 1004)


@dataclass(frozen=True)
class SearchSettings:
    space: str = "last-layer"
    tasks: tuple[str, ...] | None = None  # task space: the tasks to search (default: all)
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    iterations: int = 10
    pairs: int = 4
    noise: float = 0.02  # last-layer: relative to the weights' std; task: pre-activation units
    step: float = 0.01  # same units as noise
    seed: int = 0
    jobs: int = 1  # task space: tasks searched at once, one process each
    check_seeds: tuple[int, ...] = ()  # a new best must also beat the kept one on these
