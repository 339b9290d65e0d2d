"""Step N MjData instances of one model in native threads and gather their state into arrays.

MuJoCo releases the GIL inside ``mj_step``, so plain Python threads step instances in
parallel; the little per-instance Python (writing controls, copying state out, scanning the
contact list) runs while another thread is inside ``mj_step``. Work is handed out instance by
instance from a shared counter, so a thread that drew cheap instances takes more.

After a step every selected MjData field of every instance sits in one ``(N, L)`` float64
matrix ``F`` (column ranges ``col[name]``; ``fields[name]`` are shaped views): the fields live
in one allocation per MjData, so each group of nearby fields is copied out with a single
``np.copyto`` per instance ("spans"). Extra columns after the MjData fields belong to the
caller (computed velocities, per-episode constants, a zero column).

Contacts: MuJoCo keeps ``d.contact`` at the start of the MjData arena, so the geom pairs of the
first ``CONTACT_CAPACITY`` contacts are copied through a fixed strided view (checked on every
reset); instances with more contacts take the slow path through ``d.contact.geom``.
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

from soccerlab.envs.soccer.fast.layout import Layout

GATHERED = ("qpos", "qvel", "sensordata", "site_xpos", "cdof")
_SPAN_GAP = 8192  # bytes: fields closer than this are copied together
CONTACT_CAPACITY = 48  # contacts read through the fast path (random-torque episodes peak ~30)
_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


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


class BatchPhysics:
    """N MjData of one model, stepped together.

    Inputs are written into ``ctrl`` (N, 12) and, for the goalie task, ``keeper_qpos`` /
    ``keeper_qvel`` (N, 2) before ``step()``. Outputs: ``F`` with the gathered MjData fields,
    and ``contact_flags()`` (N,) bit flags from ``layout.contact_table``.

    Per-instance geom positions (the obstacle task's defenders) are applied to the stepping
    thread's own MjModel copy before each ``mj_step``; ``geom_ids`` lists those geoms.
    """

    def __init__(self, model: mujoco.MjModel, n_envs: int, lay: Layout, n_threads: int = 1,
                 geom_ids: np.ndarray | None = None, n_extra: int = 0) -> None:
        self.n = n_envs
        self.lay = lay
        self.n_threads = max(1, min(int(n_threads), n_envs))
        self.geom_ids = None if geom_ids is None else np.asarray(geom_ids)
        if self.geom_ids is None:
            self.models = [model] * self.n_threads
        else:
            self.models = [copy.copy(model) for _ in range(self.n_threads)]
        self.datas = [mujoco.MjData(model) for _ in range(n_envs)]

        self.ctrl = np.zeros((n_envs, len(lay.ctrl_lo)))
        self.keeper_qpos = np.zeros((n_envs, 2))
        self.keeper_qvel = np.zeros((n_envs, 2))
        n_geo = 0 if self.geom_ids is None else len(self.geom_ids)
        self.geom_pos = np.zeros((n_envs, n_geo, 3))
        self.geom_key = np.zeros(n_envs, dtype=np.int64)  # identifies geom_pos contents
        self._model_key = [-1] * self.n_threads

        self._build_views(n_extra)
        cap = CONTACT_CAPACITY
        self.ncon = np.zeros(n_envs, dtype=np.int64)
        self.cgeom = np.zeros((n_envs, cap, 2), dtype=np.int32)
        self._cgeom_dst = [self.cgeom[i] for i in range(n_envs)]
        self._cgeom_src: list[np.ndarray | None] = [None] * n_envs
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
        lay, n = self.lay, self.n
        plan = _plan_spans(self.datas[0], GATHERED)
        width = sum(end - start for start, end, _ in plan) // 8
        self.F = np.zeros((n, width + n_extra))
        self.extra = width  # first caller-owned column
        self.col: dict[str, int] = {}
        self.fields: dict[str, np.ndarray] = {}
        self._span_src: list[list[np.ndarray]] = []
        self._span_dst: list[list[np.ndarray]] = []
        ref_base = _addr(self.datas[0].qpos)
        c0 = 0
        for start, end, names in plan:
            c1 = c0 + (end - start) // 8
            srcs = []
            for d in self.datas:
                base = _addr(d.qpos)
                for name in names:  # same layout in every MjData of this model
                    if _addr(getattr(d, name)) - base != _addr(getattr(self.datas[0], name)) - ref_base:
                        raise RuntimeError("MjData layouts differ between instances")
                srcs.append(_raw_view(base + start, end - start))
            self._span_src.append(srcs)
            self._span_dst.append([self.F[i, c0:c1] for i in range(n)])
            for name in names:
                arr = getattr(self.datas[0], name)
                col = c0 + (_addr(arr) - ref_base - start) // 8
                self.col[name] = col
                view = self.F[:, col:col + arr.size]
                self.fields[name] = view.reshape((n, *arr.shape)) if arr.ndim > 1 else view
            c0 = c1
        self._ctrl_dst = [d.ctrl[lay.act] for d in self.datas]
        if not all(np.shares_memory(v, d.ctrl) for v, d in zip(self._ctrl_dst, self.datas,
                                                                 strict=True)):
            raise RuntimeError("actuators of the action are not contiguous")
        self._ctrl_src = [self.ctrl[i] for i in range(n)]
        self._keeper = lay.keeper_qpos is not None
        if self._keeper:
            k0, k1 = lay.keeper_dof
            if not (isinstance(lay.keeper_qpos, slice) and k1 == k0 + 1):
                raise RuntimeError("keeper joints are not contiguous")
            self._kq_dst = [d.qpos[lay.keeper_qpos] for d in self.datas]
            self._kv_dst = [d.qvel[k0:k1 + 1] for d in self.datas]
            self._kq_src = [self.keeper_qpos[i] for i in range(n)]
            self._kv_src = [self.keeper_qvel[i] for i in range(n)]

    # ----------------------------------------------------------------------------- stepping
    def _apply_geoms(self, k: int, i: int) -> None:
        """Make thread k's model carry instance i's per-episode geom positions."""
        key = int(self.geom_key[i])
        if self._model_key[k] != key:
            self.models[k].geom_pos[self.geom_ids] = self.geom_pos[i]
            self._model_key[k] = key

    def _gather(self, i: int) -> None:
        for src, dst in zip(self._span_src, self._span_dst, strict=True):
            np.copyto(dst[i], src[i])

    def _read_contacts(self, i: int) -> None:
        d = self.datas[i]
        nc = d.ncon
        src = self._cgeom_src[i]
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
            self._cgeom_src[i] = _contact_geom_view(d, CONTACT_CAPACITY)

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
        model, datas, nxt, n = self.models[k], self.datas, self._next.__next__, self.n
        keeper, geoms = self._keeper, self.geom_ids is not None
        ctrl_dst, ctrl_src = self._ctrl_dst, self._ctrl_src
        while (i := nxt()) < n:
            np.copyto(ctrl_dst[i], ctrl_src[i])
            if keeper:
                np.copyto(self._kq_dst[i], self._kq_src[i])
                np.copyto(self._kv_dst[i], self._kv_src[i])
            if geoms:
                self._apply_geoms(k, i)
            if self.timing:
                t0 = time.perf_counter()
                mujoco.mj_step(model, datas[i])
                self.mj_seconds[k] += time.perf_counter() - t0
            else:
                mujoco.mj_step(model, datas[i])
            self._gather(i)
            self._read_contacts(i)

    def step(self) -> None:
        """One ``mj_step`` of every instance, then gather fields and contacts."""
        self._next = itertools.count()
        for q in self._jobs:
            q.put(1)
        try:
            self._run(0)
        finally:
            for _ in self._jobs:
                self._done.get()
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    # ----------------------------------------------------------------------------- resets
    def set_state(self, i: int, state: np.ndarray, geom_pos: np.ndarray | None = None,
                  geom_key: int = 0, site_id: int | None = None,
                  site_pos: np.ndarray | None = None) -> mujoco.MjData:
        """Load an integration state into instance i, run ``mj_forward``, gather its fields.

        ``geom_pos`` (for ``geom_ids``) stays with the instance for every later step;
        ``site_pos`` (a site's model position) only matters for this ``mj_forward``: sites
        have no physical effect, and the caller keeps what it needs from the returned data.
        """
        d = self.datas[i]
        if self.geom_ids is not None:
            self.geom_pos[i] = geom_pos
            self.geom_key[i] = geom_key
            self._apply_geoms(0, i)
        model = self.models[0]
        if site_id is not None:
            model.site_pos[site_id] = site_pos
        mujoco.mj_resetData(model, d)
        mujoco.mj_setState(model, d, state, _STATE)
        mujoco.mj_forward(model, d)
        self._gather(i)
        src = self._cgeom_src[i]
        if src is not None and d.ncon and _addr(d.contact.geom) != _addr(src):
            raise RuntimeError("MuJoCo moved the contact array; the fast contact path is invalid")
        self._read_contacts(i)
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
    out = np.empty(mujoco.mj_stateSize(model, _STATE))
    mujoco.mj_getState(model, data, out, _STATE)
    return out
