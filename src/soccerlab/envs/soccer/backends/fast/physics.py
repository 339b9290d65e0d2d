"""Step N instances of one model in native threads and gather their state into arrays.

Each instance is an ``mjSTATE_INTEGRATION`` vector (a row of ``states``: time, qpos, qvel,
act, qacc_warmstart, ctrl, applied forces, mocap...): everything ``mj_step`` depends on. Each
physics thread owns one MjData and, per instance, loads the row (``mj_setState``), steps,
and writes the row back; the same MjData stays in cache for all instances (with one MjData
per instance, 32 instances stepped ~20 % slower here). Controls and keeper joints are written
into ``states`` for all instances at once before the step.

MuJoCo releases the GIL inside ``mj_step``, so plain Python threads step instances in parallel;
the little per-instance Python runs while another thread is inside ``mj_step``. Work is handed
out instance by instance from a shared counter.

After a step every selected MjData field of every instance sits in one ``(N, L)`` float64
matrix ``F`` (column ranges ``col[name]``; ``fields[name]`` are shaped views): those fields
live in one allocation per MjData, so each group of nearby fields is copied out with a single
``np.copyto`` per instance ("spans"). Extra columns after the MjData fields belong to the
caller (computed velocities, per-episode constants, a zero column).

Contacts: MuJoCo keeps ``d.contact`` at the start of the MjData arena, so the geom pairs of the
first ``CONTACT_CAPACITY`` contacts are copied through a fixed strided view (checked on every
reset); steps with more contacts take the slow path through ``d.contact.geom``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import itertools
import queue
import threading
import time
import weakref

import mujoco
import numpy as np
from numpy.lib.stride_tricks import as_strided

from soccerlab.envs.soccer.backends.fast.layout import Layout

GATHERED = ("qpos", "qvel", "sensordata", "site_xpos", "cdof")
_SPAN_GAP = 16384  # bytes: fields closer than this are copied together (one copy per instance)
CONTACT_CAPACITY = 48  # contacts read through the fast path (random-torque episodes peak ~30)
STATE = mujoco.mjtState.mjSTATE_INTEGRATION
_S = mujoco.mjtState


def _addr(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _raw_view(address: int, nbytes: int) -> np.ndarray:
    """A float64 view of raw memory owned by an MjData (caller keeps the MjData alive)."""
    return np.frombuffer((ctypes.c_double * (nbytes // 8)).from_address(address), np.float64)


def _contact_geom_view(data: mujoco.MjData, n: int) -> np.ndarray | None:
    """A strided (n, 2) int32 view of ``geom`` of the first n slots of ``data.contact``."""
    if data.ncon == 0:
        return None
    geom = data.contact.geom
    stride = geom.strides[0]
    raw = (ctypes.c_int32 * (n * stride // 4)).from_address(_addr(geom))
    return as_strided(np.frombuffer(raw, np.int32), shape=(n, 2), strides=(stride, 4))


def _plan_spans(data: mujoco.MjData, names: tuple[str, ...]) -> list[tuple[int, int, list[str]]]:
    """Group fields into contiguous byte ranges ``(start, end, names)`` relative to ``qpos``."""
    base = _addr(data.qpos)
    items = sorted((_addr(getattr(data, n)) - base, getattr(data, n).nbytes, n) for n in names)
    spans: list[tuple[int, int, list[str]]] = []
    for off, size, name in items:
        if spans and off - spans[-1][1] < _SPAN_GAP and off >= spans[-1][0]:
            start, end, members = spans[-1]
            spans[-1] = (start, max(end, off + size), [*members, name])
        else:
            spans.append((off, off + size, [name]))
    return spans


# mjSTATE_INTEGRATION components, in state order, with the MjData field holding each
_STATE_FIELDS = (
    (_S.mjSTATE_QPOS, "qpos"), (_S.mjSTATE_QVEL, "qvel"), (_S.mjSTATE_ACT, "act"),
    (_S.mjSTATE_WARMSTART, "qacc_warmstart"), (_S.mjSTATE_CTRL, "ctrl"),
    (_S.mjSTATE_QFRC_APPLIED, "qfrc_applied"), (_S.mjSTATE_XFRC_APPLIED, "xfrc_applied"),
    (_S.mjSTATE_EQ_ACTIVE, "eq_active"), (_S.mjSTATE_MOCAP_POS, "mocap_pos"),
    (_S.mjSTATE_MOCAP_QUAT, "mocap_quat"), (_S.mjSTATE_USERDATA, "userdata"),
    (_S.mjSTATE_PLUGIN, "plugin_state"),
)


def state_offsets(model: mujoco.MjModel) -> dict[str, int]:
    """Offsets of qpos, qvel and ctrl inside an ``mjSTATE_INTEGRATION`` vector."""
    return {
        "qpos": mujoco.mj_stateSize(model, _S.mjSTATE_TIME),
        "qvel": mujoco.mj_stateSize(model, _S.mjSTATE_TIME | _S.mjSTATE_QPOS),
        "ctrl": mujoco.mj_stateSize(model, _S.mjSTATE_TIME | _S.mjSTATE_QPOS | _S.mjSTATE_QVEL
                                    | _S.mjSTATE_ACT | _S.mjSTATE_WARMSTART),
    }


class BatchPhysics:
    """N instances of one model, stepped together.

    Inputs: write controls into ``ctrl`` (N, 12, the action's actuators) and, for the goalie
    task, ``keeper_qpos`` / ``keeper_qvel`` (N, 2) before ``step()`` (views into ``states``).
    Outputs: ``F`` with the gathered MjData fields, ``contact_flags()`` (N,) bit flags from
    ``layout.contact_table``.

    Per-instance geom positions (the obstacle task's defenders) are applied to the stepping
    thread's own MjModel copy before each ``mj_step``; ``geom_ids`` lists those geoms.

    ``adaptive=True``: use all ``n_threads`` or only the calling thread, whichever steps
    faster lately (on a loaded machine a second thread can cost more than it brings). Each
    option is timed for ``_PROBE`` steps at the start and again every ``_REPROBE`` steps.
    """

    _PROBE = 16
    _REPROBE = 1024

    def __init__(self, model: mujoco.MjModel, n_envs: int, lay: Layout, n_threads: int = 1,
                 geom_ids: np.ndarray | None = None, n_extra: int = 0,
                 adaptive: bool = False) -> None:
        self.n = n_envs
        self.lay = lay
        self.n_threads = max(1, min(int(n_threads), n_envs))
        self.adaptive = adaptive and self.n_threads > 1
        self._probe_time = {1: 0.0, self.n_threads: 0.0}  # mean seconds per step while probed
        self._steps = 0
        self.thread_steps = {1: 0, self.n_threads: 0}  # steps taken with each option
        self.geom_ids = None if geom_ids is None else np.asarray(geom_ids)
        if self.geom_ids is None:
            self.models = [model] * self.n_threads
        else:
            self.models = [copy.copy(model) for _ in range(self.n_threads)]
        self.work = [mujoco.MjData(model) for _ in range(self.n_threads)]

        self.states = np.zeros((n_envs, mujoco.mj_stateSize(model, STATE)))
        self._rows = [self.states[i] for i in range(n_envs)]
        off = state_offsets(model)
        self.qpos = self.states[:, off["qpos"]:off["qpos"] + model.nq]
        self.qvel = self.states[:, off["qvel"]:off["qvel"] + model.nv]
        self.ctrl = self.states[:, off["ctrl"]:off["ctrl"] + model.nu][:, lay.act]
        if not np.shares_memory(self.ctrl, self.states):
            raise RuntimeError("actuators of the action are not contiguous")
        if lay.keeper_qpos is not None:
            k0, k1 = lay.keeper_dof
            if not (isinstance(lay.keeper_qpos, slice) and k1 == k0 + 1):
                raise RuntimeError("keeper joints are not contiguous")
            self.keeper_qpos = self.qpos[:, lay.keeper_qpos]
            self.keeper_qvel = self.qvel[:, k0:k1 + 1]

        n_geo = 0 if self.geom_ids is None else len(self.geom_ids)
        self.geom_pos = np.zeros((n_envs, n_geo, 3))
        self.geom_key = np.zeros(n_envs, dtype=np.int64)  # identifies geom_pos contents
        self._model_key = [-1] * self.n_threads

        self._checked = False
        self._build_views(n_extra)
        cap = CONTACT_CAPACITY
        self.ncon = np.zeros(n_envs, dtype=np.int64)
        self.cgeom = np.zeros((n_envs, cap, 2), dtype=np.int32)
        self._cgeom_dst = [self.cgeom[i] for i in range(n_envs)]
        self._cgeom_src: list[np.ndarray | None] = [None] * self.n_threads
        self._slow_flags = np.zeros(n_envs, dtype=np.uint8)
        self.contact = np.zeros(n_envs, dtype=np.uint8)
        self._table = lay.contact_table.ravel()
        self._ngeom = lay.contact_table.shape[0]
        self._slots = np.arange(cap)

        self.timing = False  # accumulate seconds inside mj_step per thread (benchmarks)
        self.mj_seconds = [0.0] * self.n_threads
        self._next = itertools.count()
        self._error: BaseException | None = None
        self._jobs: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        for k in range(1, self.n_threads):
            q: queue.SimpleQueue = queue.SimpleQueue()
            t = threading.Thread(target=_worker, args=(weakref.ref(self), k, q), daemon=True,
                                 name=f"fast-physics-{k}")
            t.start()
            self._jobs.append(q)
            self._threads.append(t)

    # ----------------------------------------------------------------------------- views
    def _build_views(self, n_extra: int) -> None:
        n, ref = self.n, self.work[0]
        state_fields = [f for _, f in _STATE_FIELDS if getattr(ref, f).size]
        self._state_from_F = all(getattr(ref, f).dtype == np.float64 for f in state_fields)
        names = tuple(dict.fromkeys((*GATHERED, *state_fields))) if self._state_from_F \
            else GATHERED
        plan = _plan_spans(ref, names)
        width = sum(end - start for start, end, _ in plan) // 8
        self.F = np.zeros((n, width + n_extra))
        self.extra = width  # first caller-owned column
        self.col: dict[str, int] = {}
        self.fields: dict[str, np.ndarray] = {}
        self._span_src: list[list[np.ndarray]] = []  # [span][thread]
        self._span_dst: list[list[np.ndarray]] = []  # [span][instance]
        ref_base = _addr(ref.qpos)
        c0 = 0
        for start, end, names in plan:
            c1 = c0 + (end - start) // 8
            srcs = []
            for d in self.work:
                base = _addr(d.qpos)
                for name in names:  # same layout in every MjData of this model
                    if _addr(getattr(d, name)) - base != _addr(getattr(ref, name)) - ref_base:
                        raise RuntimeError("MjData layouts differ between instances")
                srcs.append(_raw_view(base + start, end - start))
            self._span_src.append(srcs)
            self._span_dst.append([self.F[i, c0:c1] for i in range(n)])
            for name in names:
                arr = getattr(ref, name)
                col = c0 + (_addr(arr) - ref_base - start) // 8
                self.col[name] = col
                view = self.F[:, col:col + arr.size]
                self.fields[name] = view.reshape((n, *arr.shape)) if arr.ndim > 1 else view
            c0 = c1
        if self._state_from_F:  # where each state element (after time) sits in F
            model, bits = self.models[0], _S.mjSTATE_TIME
            s_idx, f_idx = [], []
            for flag, name in _STATE_FIELDS:
                size = getattr(ref, name).size
                if size:
                    at = mujoco.mj_stateSize(model, bits)
                    s_idx += range(at, at + size)
                    f_idx += range(self.col[name], self.col[name] + size)
                bits |= flag
            self._s_idx, self._f_idx = np.array(s_idx), np.array(f_idx)
            self._dt = model.opt.timestep

    # ----------------------------------------------------------------------------- stepping
    def _apply_geoms(self, k: int, i: int) -> None:
        """Make thread k's model carry instance i's per-episode geom positions."""
        key = int(self.geom_key[i])
        if self._model_key[k] != key:
            self.models[k].geom_pos[self.geom_ids] = self.geom_pos[i]
            self._model_key[k] = key

    def _gather(self, k: int, i: int) -> None:
        """Copy thread k's MjData fields into row i of ``F``; its contacts into ``cgeom``."""
        for src, dst in zip(self._span_src, self._span_dst, strict=True):
            np.copyto(dst[i], src[k])
        d = self.work[k]
        nc = d.ncon
        src = self._cgeom_src[k]
        if src is not None and nc <= CONTACT_CAPACITY:
            self.ncon[i] = nc
            np.copyto(self._cgeom_dst[i], src)
            return
        self.ncon[i] = -1  # slow path
        if nc == 0:
            self._slow_flags[i] = 0
            return
        g = d.contact.geom
        self._slow_flags[i] = np.bitwise_or.reduce(self.lay.contact_table[g[:, 0], g[:, 1]])
        if src is None:
            self._cgeom_src[k] = _contact_geom_view(d, CONTACT_CAPACITY)

    def contact_flags(self) -> np.ndarray:
        """(N,) OR of the contact categories of each instance's current contacts."""
        ncon = self.ncon
        pairs = self.cgeom[:, :, 0] * self._ngeom + self.cgeom[:, :, 1]
        pairs[self._slots >= ncon[:, None]] = 0  # beyond ncon: stale memory
        np.bitwise_or.reduce(self._table[pairs], axis=1, out=self.contact)
        slow = ncon < 0
        if slow.any():
            self.contact[slow] = self._slow_flags[slow]
        return self.contact

    def _run(self, k: int) -> None:
        model, d, rows = self.models[k], self.work[k], self._rows
        nxt, n, geoms = self._next.__next__, self.n, self.geom_ids is not None
        set_state, get_state, step = mujoco.mj_setState, mujoco.mj_getState, mujoco.mj_step
        from_f = self._state_from_F
        while (i := nxt()) < n:
            if geoms:
                self._apply_geoms(k, i)
            row = rows[i]
            set_state(model, d, row, STATE)
            if self.timing:
                t0 = time.perf_counter()
                step(model, d)
                self.mj_seconds[k] += time.perf_counter() - t0
            else:
                step(model, d)
            if not from_f:
                get_state(model, d, row, STATE)
            self._gather(k, i)

    def _choose_threads(self) -> int:
        """Threads for the next step (adaptive mode): probe both options, then the faster."""
        probe, many = self._PROBE, self.n_threads
        phase = self._steps % self._REPROBE
        if phase < probe:
            return many
        if phase < 2 * probe:
            return 1
        return 1 if self._probe_time[1] < self._probe_time[many] else many

    def step(self) -> None:
        """One ``mj_step`` of every instance, then gather fields and contacts."""
        active = self._choose_threads() if self.adaptive else self.n_threads
        t0 = time.perf_counter()
        self._next = itertools.count()
        for q in self._jobs[:active - 1]:
            q.put(1)
        try:
            self._run(0)
        finally:
            for _ in range(active - 1):
                self._done.get()
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        if self._state_from_F:  # the rows' new state, from the gathered fields; time += dt
            self.states[:, self._s_idx] = self.F[:, self._f_idx]
            self.states[:, 0] += self._dt
        self.thread_steps[active] += 1
        if self.adaptive:
            phase = self._steps % self._REPROBE
            if phase < 2 * self._PROBE:
                if phase % self._PROBE == 0:
                    self._probe_time[active] = 0.0
                self._probe_time[active] += (time.perf_counter() - t0) / self._PROBE
            self._steps += 1

    # ----------------------------------------------------------------------------- resets
    def set_state(self, i: int, state: np.ndarray, geom_pos: np.ndarray | None = None,
                  geom_key: int = 0, site_id: int | None = None,
                  site_pos: np.ndarray | None = None) -> mujoco.MjData:
        """Make ``state`` instance i's state, run ``mj_forward``, gather its fields.

        ``geom_pos`` (for ``geom_ids``) stays with the instance for every later step;
        ``site_pos`` (a site's model position) only matters for this ``mj_forward``: sites
        have no physical effect, and the caller keeps what it needs from the returned MjData
        (valid until the next step or reset).
        """
        if self.geom_ids is not None:
            self.geom_pos[i] = geom_pos
            self.geom_key[i] = geom_key
            self._apply_geoms(0, i)
        model, d = self.models[0], self.work[0]
        if site_id is not None:
            model.site_pos[site_id] = site_pos
        self.states[i] = state
        mujoco.mj_setState(model, d, self.states[i], STATE)
        mujoco.mj_forward(model, d)
        src = self._cgeom_src[0]
        if src is not None and d.ncon and _addr(d.contact.geom) != _addr(src):
            raise RuntimeError("MuJoCo moved the contact array; the fast contact path is invalid")
        self._gather(0, i)
        if self._state_from_F and not self._checked:
            rebuilt = self.states[i].copy()
            rebuilt[self._s_idx] = self.F[i, self._f_idx]
            if not np.array_equal(rebuilt, get_state(model, d)):
                raise RuntimeError("the integration state is not where expected in MjData")
            self._checked = True
        return d

    def close(self) -> None:
        """Stop the worker threads."""
        for q in self._jobs:
            q.put(None)
        for t in self._threads:
            t.join()
        self._jobs, self._threads = [], []

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()


def _worker(ref: weakref.ref, k: int, jobs: queue.SimpleQueue) -> None:
    """Physics thread k: run one share of a step per job; holds no reference while idle."""
    while jobs.get() is not None:
        phys = ref()
        if phys is None:
            return
        try:
            phys._run(k)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            phys._error = exc
        phys._done.put(k)
        del phys


def get_state(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    """The integration state of ``data`` (what ``set_state`` loads)."""
    out = np.empty(mujoco.mj_stateSize(model, STATE))
    mujoco.mj_getState(model, data, out, STATE)
    return out
