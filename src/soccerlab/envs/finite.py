"""A NaN or inf from an env (a physics blow-up) ends that episode, not the training run.

``FiniteGuard`` wraps the raw VecEnv, under VecNormalize, so that no non-finite observation or
reward reaches the policy, the replay or rollout buffer, or the normaliser's statistics. When
env i returns one, its episode ends there as truncated (``TimeLimit.truncated``): reward 0, and
as ``terminal_observation`` the step's observation if it is finite, else the last finite one
(the observation the policy acted on). Env i is then reset on its own, again until its first
observation is finite. An episode whose first observation is non-finite is dropped the same way.
The info of such a step loses every entry holding a non-finite number, and Monitor's
``episode`` record (its return would count the bad reward), so the episode stays out of
``rollout/ep_rew_mean``; it gains ``nonfinite: True``.

``count`` holds the number of episodes ended this way; ``NonFiniteEpisodes`` logs it as
``rollout/nonfinite_episodes`` at every rollout's end. The first case is reported on stderr,
the later ones only counted.

Resetting one env needs ``env_method("reset")`` (DummyVecEnv, SubprocVecEnv, ``SoccerVecEnv``);
a VecEnv without it makes the guard raise instead.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

LOG_KEY = "rollout/nonfinite_episodes"


class FiniteGuard(VecEnvWrapper):
    """See the module docstring. ``label`` names the envs in the warning (training, evaluation)."""

    def __init__(self, venv: VecEnv, label: str = "training", max_resets: int = 10) -> None:
        super().__init__(venv)
        self.label = label
        self.max_resets = max_resets
        self.count = 0
        self._warned = False
        self._last_obs: VecEnvObs | None = None

    def reset(self) -> VecEnvObs:
        self._forward_reset_arguments()
        obs = self.venv.reset()
        for i in np.flatnonzero(~_finite_rows(obs, self.num_envs)):
            self._note(int(i), "observation at reset")
            obs = self._reset_env(int(i), obs)
        self._last_obs = _copy(obs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        obs_ok = _finite_rows(obs, self.num_envs)
        reward_ok = np.isfinite(rewards)
        terminal_ok = [not done or _finite(infos[i].get("terminal_observation", 0.0))
                       for i, done in enumerate(dones)]
        if obs_ok.all() and reward_ok.all() and all(terminal_ok):
            self._last_obs = _copy(obs)
            return obs, rewards, dones, infos
        for i in range(self.num_envs):
            if dones[i]:  # the env ended its episode and reset itself: obs[i] starts the next one
                if not (terminal_ok[i] and reward_ok[i]):
                    terminal = (infos[i]["terminal_observation"] if terminal_ok[i]
                                else _row(self._last_obs, i))
                    self._truncate(i, rewards, infos, terminal,
                                   "reward" if terminal_ok[i] else "observation")
                if not obs_ok[i]:
                    self._note(i, "observation at reset")
                    obs = self._reset_env(i, obs)
            elif not (obs_ok[i] and reward_ok[i]):
                terminal = _row(obs if obs_ok[i] else self._last_obs, i)
                self._truncate(i, rewards, infos, terminal,
                               "reward" if obs_ok[i] else "observation")
                dones[i] = True
                obs = self._reset_env(i, obs)
        self._last_obs = _copy(obs)
        return obs, rewards, dones, infos

    # ---------------------------------------------------------------------------------
    def _truncate(self, i: int, rewards: np.ndarray, infos: list[dict], terminal: Any,
                  what: str) -> None:
        self._note(i, what)
        rewards[i] = 0.0
        info = {k: v for k, v in infos[i].items() if k != "episode" and _finite(v)}
        info.update({"terminal_observation": _copy(terminal), "TimeLimit.truncated": True,
                     "nonfinite": True})
        infos[i] = info

    def _reset_env(self, i: int, obs: VecEnvObs) -> VecEnvObs:
        """Reset env i alone until its first observation is finite; put it into ``obs``."""
        for _ in range(self.max_resets):
            try:
                first, reset_info = self.venv.env_method("reset", indices=[i])[0]
            except Exception as exc:  # noqa: BLE001 - VecEnvs refuse in their own ways
                raise RuntimeError(
                    f"{self.label} env {i} returned a non-finite value and "
                    f"{type(self.venv.unwrapped).__name__} cannot reset one env: {exc}") from exc
            reset_infos = getattr(self.venv, "reset_infos", None)
            if isinstance(reset_infos, list):
                reset_infos[i] = reset_info
            if _finite(first):
                _set_row(obs, i, first)
                return obs
            self.count += 1
        raise RuntimeError(f"{self.label} env {i} returned a non-finite first observation "
                           f"{self.max_resets} times in a row")

    def _note(self, i: int, what: str) -> None:
        self.count += 1
        if self._warned:
            return
        self._warned = True
        done = ("it was reset again" if what.endswith("reset") else
                "its episode ended there as truncated (reward 0, last finite observation)")
        counted = (f"counted in {LOG_KEY}" if self.label == "training" else "counted")
        print(f"warning: {self.label} env {i} returned a non-finite {what}: {done}, and "
              f"{self.label} goes on. Further cases are {counted}, not reported.",
              file=sys.stderr, flush=True)

    def _forward_reset_arguments(self) -> None:
        # seeds and options given to this wrapper (evaluation.seed_each sets _seeds directly)
        # belong to the VecEnv that reads them at reset
        inner = self.venv.unwrapped
        if any(s is not None for s in self._seeds):
            inner._seeds = list(self._seeds)
            self._reset_seeds()
        if any(self._options):
            inner._options = list(self._options)
            self._reset_options()


class NonFiniteEpisodes(BaseCallback):
    """Logs the training env's ``FiniteGuard.count`` as ``rollout/nonfinite_episodes``."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        guard = find_guard(self.training_env)
        if guard is not None:
            self.logger.record(LOG_KEY, guard.count)


def find_guard(venv: VecEnv | None) -> FiniteGuard | None:
    while isinstance(venv, VecEnvWrapper):
        if isinstance(venv, FiniteGuard):
            return venv
        venv = venv.venv
    return None


def _finite(value: Any) -> bool:
    """False if ``value`` holds a non-finite float anywhere (arrays, numbers, dicts, lists)."""
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    if isinstance(value, (float, np.floating, np.ndarray)):
        arr = np.asarray(value)
        return not np.issubdtype(arr.dtype, np.inexact) or bool(np.isfinite(arr).all())
    return True


def _finite_rows(obs: VecEnvObs, n: int) -> np.ndarray:
    """Per env: are all of its observation's entries finite?"""
    parts = obs.values() if isinstance(obs, dict) else [obs]
    ok = np.ones(n, dtype=bool)
    for part in parts:
        arr = np.asarray(part)
        if np.issubdtype(arr.dtype, np.inexact):
            ok &= np.isfinite(arr.reshape(n, -1)).all(axis=1)
    return ok


def _row(obs: VecEnvObs, i: int) -> Any:
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def _set_row(obs: VecEnvObs, i: int, value: Any) -> None:
    if isinstance(obs, dict):
        for k in obs:
            obs[k][i] = value[k]
    else:
        obs[i] = value


def _copy(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: np.array(v, copy=True) for k, v in obs.items()}
    return np.array(obs, copy=True)
