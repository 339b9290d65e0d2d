"""Run an exported submission folder the way the SAI benchmark does; print what happened as JSON.

Usage: ``python -I sai_check.py SPEC.json`` (``soccerlab export`` runs it in a fresh process).
It imports only numpy, torch or onnxruntime, gymnasium and sai_mujoco, never soccerlab:

- ``preprocessor.py`` and ``action_function.py`` are loaded as sai-rl's CustomCodeManager does:
  import lines stripped by its regular expression, executed with only ``np`` and ``env`` in
  scope, the first ``class``/``def`` taken, a class instantiated without arguments;
- the model is loaded as sai-rl does (``torch.jit.load`` / an onnxruntime session) and called
  on the preprocessor's batch; one model object and one preprocessor serve every task and
  every batch;
- each task runs a ``gymnasium.vector.AsyncVectorEnv`` (forked workers, shared memory), one env
  per seed, with autoreset disabled; every env
  gets a one-hot ``info["task_index"]`` on reset and step; envs whose episode ended keep being
  stepped until the batch is over; the next batch resets all envs without a seed (each env
  continues its own random stream, as soccerlab's evaluation envs do).

SPEC: ``folder``, ``model`` (file name), ``format`` (torchscript|onnx), ``seeds``, ``episodes``,
``record_steps``, ``make_kwargs`` and ``tasks`` (``name``, ``env_id``, ``index``).
Output (stdout, one JSON object): per task, per batch, per env the last step's ``reward_terms``
and the episode length; ``ctrl``: the first ``record_steps`` applied controls of env 0 in the
first batch; ``modules``: whether soccerlab was imported.
"""

import json
import re
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np

IMPORTS = re.compile(  # sai_rl.model.custom.custom_code_manager.CustomCodeManager.remove_imports
    r"^\s*#?\s*(from\s+\w+\s+import\s+.*|import\s+\w+.*|from\s+\w+\s+import\s+\(.*\)|import\s+\(.*\))",
    re.MULTILINE,
)


def load_custom_code(path, env):
    code = IMPORTS.sub("", Path(path).read_text())
    name = kind = None
    for line in code.splitlines():
        line = line.strip()
        if line.startswith("def "):
            name, kind = line.split("def ")[1].split("(")[0].strip(), "function"
            break
        if line.startswith("class "):
            name, kind = line.split("class ")[1].split("(")[0].split(":")[0].strip(), "class"
            break
    if name is None:
        raise SystemExit(f"{path}: no class or function definition")
    namespace = {"np": np, "env": env}
    # what the SAI benchmark does with the file; export runs this only on the preprocessor and
    # action function it has just written itself, never on a folder someone else made
    exec(code, namespace)  # noqa: S102
    obj = namespace[name]
    return obj() if kind == "class" else obj


def load_model(spec):
    path = str(Path(spec["folder"]) / spec["model"])
    if spec["format"] == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda obs: session.run(None, {name: obs})[0]
    import torch

    torch.set_num_threads(1)
    model = torch.jit.load(path)
    model.eval()
    return lambda obs: model(torch.from_numpy(obs)).detach().numpy()


class TaskIndex(gym.Wrapper):
    """sai_rl.env.environment.TaskGymWrapper: a one-hot task index in every info."""

    def __init__(self, env, onehot):
        super().__init__(env)
        self.onehot = onehot

    def reset(self, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        info["task_index"] = self.onehot
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["task_index"] = self.onehot
        return obs, reward, terminated, truncated, info

    def applied_controls(self):
        """The controls the simulator holds after the last step (read through ``envs.call``)."""
        return np.asarray(self.env.unwrapped.sim.data._data.ctrl, dtype=np.float64).tolist()


def vector_env(make, n):
    """The benchmark's vector env: AsyncVectorEnv, forked workers, shared memory, autoreset
    disabled (which, unlike SyncVectorEnv's, lets ended envs be stepped on)."""
    return gym.vector.AsyncVectorEnv(
        [make for _ in range(n)], shared_memory=True, copy=False,
        context="fork" if sys.platform.startswith("linux") else None,
        autoreset_mode=gym.vector.AutoresetMode.DISABLED)


def run_task(task, spec, model, preprocessor, action_function):
    import sai_mujoco  # noqa: F401  (registers the envs)

    onehot = np.eye(3, dtype=np.float32)[task["index"]]

    def make():
        return TaskIndex(gym.make(task["env_id"], **spec["make_kwargs"]), onehot)

    seeds = list(spec["seeds"])
    envs = vector_env(make, len(seeds))
    batches, ctrl = [], []
    try:
        for batch in range(spec["episodes"]):
            obs, info = envs.reset(seed=seeds if batch == 0 else None)
            done = np.zeros(len(seeds), dtype=bool)
            terms = [None] * len(seeds)
            lengths = [0] * len(seeds)
            t = 0
            while not done.all():
                actions = action_function(model(preprocessor.modify_state(obs, info)))
                obs, _, terminated, truncated, info = envs.step(actions)
                t += 1
                if batch == 0 and t <= spec["record_steps"]:
                    ctrl.append(envs.call("applied_controls")[0])
                ended = (np.asarray(terminated) | np.asarray(truncated)) & ~done
                for i in np.flatnonzero(ended):
                    rt = info.get("reward_terms", {})
                    terms[i] = {k: float(np.asarray(v)[i]) for k, v in rt.items()
                                if not k.startswith("_")}
                    lengths[i] = t
                done |= ended
            batches.append([{"terms": terms[i], "length": lengths[i]} for i in range(len(seeds))])
    finally:
        envs.close()
    return {"batches": batches, "ctrl": ctrl}


def main():
    spec = json.loads(Path(sys.argv[1]).read_text())
    folder = Path(spec["folder"])
    model = load_model(spec)
    preprocessor = load_custom_code(folder / "preprocessor.py", None)
    action_function = load_custom_code(folder / "action_function.py", None)
    out = {"tasks": {}}
    for task in spec["tasks"]:
        out["tasks"][task["name"]] = run_task(task, spec, model, preprocessor, action_function)
    out["modules"] = {"soccerlab": "soccerlab" in sys.modules}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
