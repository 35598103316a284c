"""On-disk cache of the work a hardware change does not touch (sweeps, repeated runs).

Kinds of artifact, each a pickled file under ``<cache dir>/artifacts/<kind>/``:

- ``workload``: the traced workload (fx module with BatchNorm folded, dataflow graph) with
  its calibration and evaluation inputs and labels, as :func:`simulator.runner.flow.load_workload`
  builds it; ``workload_graph`` (same key): its torch-free part (the dataflow graph, the
  note, the image counts), which is all that mapping, simulating and writing results read
  (:class:`LazyWorkload`: a rerun reads the fx module and the inputs only if a capture
  has to run, and otherwise never imports torch);
- ``scales``: the static per-layer activation scales, and ``float_accuracy``;
- ``precision``: one pipeline's per-group bit planes (:class:`PipelinePrecision`), from the
  forward pass with its policy applied inside;
- ``mapping``: the network's mapping on the chip (:func:`mapping.mapper.map_network`: the
  :class:`~mapping.mapper.NetworkMapping` with the graph it annotated);
- ``timing_plan``: the work plan, NoC routes and packets of one image that every pipeline
  of a run shares (:func:`simulator.runner.simulate.prepare_timing`).

The last two are pickles in which the objects the caller already holds (the hardware
spec, and for the plan the mapping, its graph and its position arrays) are stored by
name and replaced by the caller's own when read (:func:`get_with_refs`): a rerun gets a
fresh mapping and plan that refer to its hardware and mapping as computed ones do.

Keys (SHA-256 of a canonical JSON) never list today's workload fields by hand, so new
workload keys are covered as they are added:

- workload: the whole validated ``workload`` section (``model_dump``), a content
  fingerprint of every file or folder that a string of that section names (weights file,
  ONNX file, dataset folder: relative paths resolved against the scenario's folder;
  folders fingerprinted by their listing of relative path, size and mtime), the source
  file of a ``package.module:attr`` it names, and the code version (:data:`CACHE_FORMAT`,
  torch and torchvision versions, a hash of the ``workloads`` package and of
  ``simulator/runner/flow.py`` sources);
- scales: the workload key, the ``quantization`` section, each grouped layer's module and
  input signedness;
- precision: the scales key, the policy spec (with the fingerprints of the files it names),
  and the **group layout** (each layer's row blocks). A point that differs only in hardware
  or mapping reuses the workload, scales and bit planes as long as the row blocks are the
  same; a different
  crossbar row count regroups the activations, so the lossy policies (ReDy) are
  recomputed for it from the cached workload, once per layout. In the exact crossbar mode
  (``accuracy.crossbar: exact``) the key adds the crossbar and ADC parameters
  (:meth:`workloads.precision.crossbar.CrossbarModel.key`) and ``workload.device``;
- adc_range: the calibrated ADC's level size per layer (exact mode, ``ima.adc_model:
  calibrated``): the scales key and the crossbar and ADC parameters;
- mapping: the workload key, the scenario's ``mapping`` section, the hardware values the
  mapper reads (:func:`mapping.mapper.hardware_view`, the keys tests/test_sweep.py checks
  against what :func:`~mapping.mapper.map_network` reads, as a sweep's map task is keyed)
  and :func:`source_version` (the mapper's and the simulator's sources);
- timing_plan: the mapping key and every value of the hardware spec
  (:meth:`~simulator.hardware.spec.HardwareSpec.resolved`, derived ones included).

Location: ``$REDYSIM_CACHE/artifacts`` or the platform cache folder
(``platformdirs.user_cache_dir("redysim")``), never the repository. Each process also
keeps the last few artifacts in memory.

A torch CPU storage (the weights of a ``workload``) is pickled as its bytes, written to
the file straight from the tensor's memory, and read back into a torch storage with one
copy at a time (:func:`_storage_from_bytes`); torch's own pickling made a copy of every
storage and held them all until the whole artifact was written (VGG-16: 553 MB more, and
two copies of every weight while one is read; docs/benchmarks.md, "Peak memory").

Safe under concurrency (Dask workers, threads, two sweeps at once):

- an entry is computed under an exclusive lock on its own lock file (``flock``), and
  read again once the lock is held: two processes never compute the same artifact, the
  second one waits and reads the first one's entry;
- an entry is written to a temporary file and renamed into place (``os.replace``), so a
  reader sees a whole entry or none; a process that dies while computing or writing
  (killed, out of memory) leaves no entry, its lock is released by the kernel, and its
  temporary file is removed by the next process that takes the lock;
- an entry that cannot be read (truncated, from another version) is recomputed.

Reading an entry from disk sets its modification time (its last use): ``redysim cache``
(:mod:`simulator.runner.cache_usage`) lists the entries and removes the least recently
used ones; a run never trims the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import importlib.util
import io
import json
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from simulator.core.fsmode import mkstemp
from simulator.core.loaded_modules import loaded

T = TypeVar("T")

#: Bump when the pickled content or the key recipe changes.
CACHE_FORMAT = 3

#: Artifacts kept in memory per process and kind (the workload of ResNet-18 is ~50 MB).
MEMORY_SLOTS = {"workload": 2, "workload_graph": 4, "scales": 16, "float_accuracy": 16,
                "precision": 16, "adc_range": 16, "mapping": 4, "timing_plan": 2}

_ROOT = Path(__file__).resolve().parents[2]


def default_cache_dir() -> Path:
    """``$REDYSIM_CACHE`` or the platform's user cache folder for redysim."""
    env = os.environ.get("REDYSIM_CACHE")
    if env:
        return Path(env)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("redysim"))
    except ImportError:  # pragma: no cover - platformdirs is a dependency
        return Path.home() / ".cache" / "redysim"


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Content fingerprint of a file (SHA-256) or a folder (listing with sizes and mtimes)."""
    p = path.resolve()
    if p.is_dir():
        listing = sorted(
            (str(f.relative_to(p)), f.stat().st_size, f.stat().st_mtime_ns)
            for f in p.rglob("*") if f.is_file())
        return {"folder": str(p), "listing": _digest(listing), "files": len(listing)}
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[memo] = h.hexdigest()
    return {"file": str(p), "sha256": _FILE_HASHES[memo]}


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)


def referenced_files(section: Any, base_dir: Path) -> dict[str, Any]:
    """Fingerprints of every file or folder, and of the source of every
    ``package.module:attr``, that a string of *section* names."""
    out: dict[str, Any] = {}
    base = base_dir.resolve()
    for s in _strings(section):
        if not s or len(s) > 4096 or "\n" in s:
            continue
        if ":" in s and not s.startswith(("/", ".")) and "/" not in s.split(":")[0]:
            mod = s.split(":")[0]
            try:
                spec = importlib.util.find_spec(mod)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.origin and Path(spec.origin).is_file():
                out[s] = file_fingerprint(Path(spec.origin))
            continue
        p = Path(s) if Path(s).is_absolute() else base_dir / s
        try:
            if p.exists() and p.resolve() not in (base, *base.parents):
                out[s] = file_fingerprint(p)
        except OSError:
            continue
    return out


_CODE_VERSION: str | None = None


def code_version() -> str:
    """Hash of everything that changes how a workload is built and captured."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        from importlib.metadata import PackageNotFoundError, version

        versions = []
        for dist in ("torch", "torchvision"):
            try:
                versions.append(version(dist))
            except PackageNotFoundError:  # pragma: no cover
                versions.append("-")
        h = hashlib.sha256(f"{CACHE_FORMAT}|{'|'.join(versions)}".encode())
        sources = (sorted((_ROOT / "workloads").rglob("*.py"))
                   + [_ROOT / "simulator" / "runner" / "flow.py"])
        for f in sources:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        _CODE_VERSION = h.hexdigest()
    return _CODE_VERSION


_SOURCE_VERSION: str | None = None


def source_version() -> str:
    """Hash of :func:`code_version` and every source file a point's results come from:
    the simulator's layers up to the results writer, the mapper and the workloads (its
    resume key; the artifact cache's keys need only what builds and captures a workload).
    The exploration and the CLI above are left out, so a change to a study's page does
    not rerun its sweeps."""
    global _SOURCE_VERSION
    if _SOURCE_VERSION is None:
        h = hashlib.sha256(code_version().encode())  # covers workloads/ and flow.py
        for top in ("simulator/core", "simulator/hardware", "simulator/model",
                    "simulator/engine", "simulator/runner", "simulator/results", "mapping"):
            for f in sorted((_ROOT / top).rglob("*.py")):
                h.update(f.relative_to(_ROOT).as_posix().encode())
                h.update(f.read_bytes())
        _SOURCE_VERSION = h.hexdigest()
    return _SOURCE_VERSION


# --------------------------------------------------------------------------- the store


class ArtifactCache:
    """Disk store of pickled artifacts with per-key locks and a small in-memory layer.

    ``hits`` and ``misses`` count lookups per kind (for reports and tests).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "artifacts"
        self.hits: dict[str, int] = {}
        self.misses: dict[str, int] = {}

    def path(self, kind: str, key: str) -> Path:
        """File of artifact *kind* with *key*."""
        return self.root / kind / f"{key}.pkl"

    def forget(self, kind: str, key: str) -> None:
        """Drop the artifact (*kind*, *key*) from this process's in-memory layer (the disk
        entry stays): the next lookup reads it from disk, a fresh object."""
        with _MEMORY_LOCK:
            _MEMORY.get(kind, {}).pop((str(self.root), key), None)

    def in_memory(self, kind: str, key: str) -> bool:
        """Whether the artifact (*kind*, *key*) is in this process's in-memory layer."""
        return (str(self.root), key) in _MEMORY.get(kind, {})

    def has(self, kind: str, key: str) -> bool:
        """Whether the artifact (*kind*, *key*) is in memory or on disk (not read)."""
        return (str(self.root), key) in _MEMORY.get(kind, {}) or self.path(kind, key).is_file()

    def get_or_compute(self, kind: str, key: str, compute: Callable[[], T]) -> T:
        """The artifact (*kind*, *key*): from memory, from disk, or computed and stored."""
        mkey = (str(self.root), key)
        with _MEMORY_LOCK:
            mem = _MEMORY.setdefault(kind, OrderedDict())
            if mkey in mem:
                mem.move_to_end(mkey)
                self._count(self.hits, kind)
                return mem[mkey]
        path = self.path(kind, key)
        value = self._read(path)
        if value is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with entry_lock(path):
                value = self._read(path)  # another process may have written it meanwhile
                if value is None:
                    _remove_stale_temporaries(path)
                    self._count(self.misses, kind)
                    value = compute()
                    _write_atomic(path, value)
                else:
                    self._count(self.hits, kind)
        else:
            self._count(self.hits, kind)
            with contextlib.suppress(OSError):  # its last use, for ``redysim cache trim``
                os.utime(path)
        with _MEMORY_LOCK:
            mem[mkey] = value
            while len(mem) > MEMORY_SLOTS.get(kind, 4):
                mem.popitem(last=False)
        return value

    @staticmethod
    def _count(table: dict[str, int], kind: str) -> None:
        table[kind] = table.get(kind, 0) + 1

    @staticmethod
    def _read(path: Path) -> Any:
        if not path.is_file():
            return None
        try:
            with path.open("rb") as f:
                return pickle.load(f)
        except Exception:  # noqa: BLE001 - a corrupt or foreign entry is recomputed
            return None


_MEMORY: dict[str, OrderedDict[tuple[str, str], Any]] = {}
_MEMORY_LOCK = threading.Lock()  # a Dask worker may run tasks in several threads


def clear_memory() -> None:
    """Forget the in-memory layer of this process (tests)."""
    _MEMORY.clear()


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of *path* left by a writer that died (call with the lock held)."""
    for stale in path.parent.glob(f".{path.name}.*"):
        with contextlib.suppress(OSError):
            stale.unlink()


class _Pickler(pickle.Pickler):
    """A pickler that writes a torch CPU storage as its bytes, from the storage's memory
    (no copy; torch's own ``__reduce__`` saves every storage into a bytes object, which the
    pickler's memo keeps until the end)."""

    def reducer_override(self, obj: Any) -> Any:
        torch = loaded("torch")
        if torch is None:
            return NotImplemented
        typed = type(obj) is torch.storage.TypedStorage
        if not typed and type(obj) is not torch.UntypedStorage:
            return NotImplemented
        raw = obj._untyped_storage if typed else obj
        if raw.device.type != "cpu" or getattr(obj, "_fake_device", None) is not None:
            return NotImplemented
        n = raw.nbytes()
        data = (torch.empty(0, dtype=torch.uint8).set_(raw, 0, (n,), (1,)).numpy() if n
                else bytearray())
        return _storage_from_bytes, (pickle.PickleBuffer(data), obj.dtype if typed else None)


def _storage_from_bytes(data: bytearray | bytes, dtype: Any) -> Any:
    """A torch CPU storage (typed when *dtype*) holding a copy of *data*, which is then
    emptied: reading an artifact holds one storage's bytes twice, never all of them."""
    import torch

    raw = (torch.UntypedStorage.from_buffer(data, dtype=torch.uint8) if len(data)
           else torch.UntypedStorage(0))
    if isinstance(data, bytearray):
        data.clear()  # unpickled for this call alone; the unpickler's memo keeps it
    if dtype is None:
        return raw
    return torch.storage.TypedStorage(wrap_storage=raw, dtype=dtype, _internal=True)


def _write_atomic(path: Path, value: Any) -> None:
    fd, tmp = mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if loaded("torch") is not None:  # a torch object may be in *value*
                _Pickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
            else:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class _RefPickler(pickle.Pickler):
    """A pickler that stores the objects of *refs* (name -> object) by their name."""

    def __init__(self, f: Any, refs: dict[Any, Any]) -> None:
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        self._names = {id(obj): name for name, obj in refs.items()}

    def persistent_id(self, obj: Any) -> Any:
        return self._names.get(id(obj))


class _RefUnpickler(pickle.Unpickler):
    """The unpickler of :class:`_RefPickler`: a stored name reads as the object of *refs*."""

    def __init__(self, f: Any, refs: dict[Any, Any]) -> None:
        super().__init__(f)
        self._refs = refs

    def persistent_load(self, pid: Any) -> Any:
        return self._refs[pid]


def dumps_with_refs(value: Any, refs: dict[Any, Any]) -> bytes:
    """*value* pickled, with the objects of *refs* (name -> object) stored by name."""
    buf = io.BytesIO()
    _RefPickler(buf, refs).dump(value)
    return buf.getvalue()


def loads_with_refs(blob: bytes, refs: dict[Any, Any]) -> Any:
    """The value of :func:`dumps_with_refs`, each stored name replaced by its object in
    *refs*. The garbage collector is off meanwhile: an unpickled work plan is ~10^5 new
    objects that no collection can free, and the collections it triggers took 60 % of
    reading the quick start's (docs/benchmarks.md, "Fixed costs")."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _RefUnpickler(io.BytesIO(blob), refs).load()
    finally:
        if enabled:
            gc.enable()


def get_with_refs(cache: ArtifactCache, kind: str, key: str, compute: Callable[[], T],
                  refs: dict[Any, Any]) -> T:
    """``compute()`` through *cache* (kind, key), stored as :func:`dumps_with_refs` of
    it: the objects of *refs* (name -> object: inputs the caller holds, such as the
    hardware spec) are stored by name and read back as the caller's own. Returns the
    computed object itself when it is computed here, else a fresh one read from memory
    or disk (the in-memory layer holds the pickled bytes, never a shared object)."""
    made: list[T] = []

    def blob() -> bytes:
        made.append(compute())
        return dumps_with_refs(made[0], refs)

    data = cache.get_or_compute(kind, key, blob)
    return made[0] if made else loads_with_refs(data, refs)


@contextlib.contextmanager
def entry_lock(entry: Path, wait: bool = True) -> Iterator[bool]:
    """Exclusive advisory lock of the artifact file *entry* (on ``<key>.lock`` beside it):
    yields True once held; with *wait* False, False at once when another process holds it
    (``redysim cache trim`` skips such an entry). Where ``fcntl`` is missing: no lock,
    True."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    with entry.with_suffix(".lock").open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # (only without waiting)
            held = False
        else:
            held = True
        try:
            yield held
        finally:
            if held:
                fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- flow hooks


def workload_key(sc: Any) -> str:
    """Key of a scenario's workload (see the module docstring)."""
    section = sc.workload.model_dump(mode="json")
    section.pop("device", None)  # where the capture runs does not change the workload
    return _digest({"kind": "workload", "code": code_version(), "workload": section,
                    "files": referenced_files(section, sc.base_dir)})


def mapping_key(wkey: str, options: Any, hw: Any) -> str:
    """Key of the mapping of the workload of key *wkey* with the scenario's mapping
    *options* on the hardware *hw* (see the module docstring)."""
    from mapping.mapper import hardware_view

    return _digest({"kind": "mapping", "code": source_version(), "workload": wkey,
                    "mapping": options.model_dump(mode="json"), "hardware": hardware_view(hw)})


def timing_plan_key(mkey: str, hw: Any) -> str:
    """Key of the timing plan of the mapping of key *mkey* on the hardware *hw*."""
    return _digest({"kind": "timing_plan", "mapping": mkey, "hardware": hw.resolved()})


def cached_workload(cache: ArtifactCache, sc: Any, load: Callable[[Any], T],
                    lazy: bool = False) -> T:
    """``load(sc)`` through the cache; the graph is copied (mapping annotates it in place).

    *lazy*: a :class:`LazyWorkload` instead, read from the small ``workload_graph``
    artifact (the dataflow graph, the note, the counts: no torch object), whose module and
    inputs are read from the ``workload`` artifact (or built) only when first used; a
    rerun that finds every artifact cached never reads them, nor imports torch.
    """
    key = workload_key(sc)
    if lazy:
        def read() -> tuple[Any, bool]:
            shared = cache.in_memory("workload", key)  # another holder may have it
            return cache.get_or_compute("workload", key, lambda: load(sc)), shared

        full = _Source(read, lambda: cache.forget("workload", key))
        info = cache.get_or_compute("workload_graph", key, lambda: workload_graph(full()))
        return _lazy(info, full, copy_graph=True, key=key)  # type: ignore[return-value]
    wl = cache.get_or_compute("workload", key, lambda: load(sc))
    traced = wl.traced  # type: ignore[attr-defined]
    return dataclasses.replace(wl, traced=dataclasses.replace(traced,  # type: ignore[type-var]
                                                              graph=traced.graph.copy()))


def workload_graph(wl: Any) -> dict[str, Any]:
    """The torch-free part of a workload (:class:`workloads.loader.Workload`) that mapping,
    simulating and writing results read: the ``workload_graph`` artifact."""
    return {"graph": wl.traced.graph, "name": wl.traced.name,
            "input_shape": tuple(wl.traced.input_shape), "note": wl.note, "info": wl.info,
            "keep_images": wl.keep_images, "eval_count": wl.eval_count,
            "has_labels": wl.has_labels}


def lazy_workload(wl: Any, load: Callable[[], Any]) -> LazyWorkload:
    """A :class:`LazyWorkload` of the workload *wl*, built by this caller (no cache): its
    own, so :meth:`LazyWorkload.own` changes nothing; after :meth:`LazyWorkload.release`
    ``load()`` builds it again when it is used."""
    full = _Source(lambda: (load(), False))
    full.value, full.shared = wl, False
    return _lazy(workload_graph(wl), full, copy_graph=False)


def _lazy(info: dict[str, Any], full: _Source, copy_graph: bool,
          key: str | None = None) -> LazyWorkload:
    """The :class:`LazyWorkload` of a ``workload_graph`` artifact *info* (its graph copied
    when *copy_graph*: mapping annotates it in place; *key*: the artifact's key)."""
    graph = info["graph"].copy() if copy_graph else info["graph"]
    traced = LazyTraced(graph, info["name"], info["input_shape"], full)
    return LazyWorkload(traced, info["note"], info["info"], info["keep_images"],
                        info["eval_count"], info["has_labels"], full, key)


class _Source:
    """The full workload of a :class:`LazyWorkload`: ``read()`` (the workload, and whether
    another holder may have the same object: the cache's in-memory layer gave it) on the
    first call, then remembered; ``forget()`` drops it from the cache's in-memory layer."""

    def __init__(self, read: Callable[[], tuple[Any, bool]],
                 forget: Callable[[], None] | None = None) -> None:
        self._read, self._forget = read, forget
        self.value: Any = None
        self.shared = False

    def __call__(self) -> Any:
        if self.value is None:
            self.value, self.shared = self._read()
        return self.value

    def own(self) -> Any:
        """The workload, this source's alone (see :meth:`LazyWorkload.own`)."""
        value = self()
        if self.shared:
            import copy

            self.value, self.shared = copy.deepcopy(value), False
        elif self._forget is not None:
            self._forget()
        return self.value

    def release(self) -> bool:
        """Drop the workload (read again on the next call); whether one was held."""
        held = self.value is not None
        self.value, self.shared = None, False
        return held


@dataclasses.dataclass
class LazyTraced:
    """The traced network as :class:`workloads.graph.TracedWorkload` has it, with the fx
    ``module`` read (or built) on first use."""

    graph: Any
    name: str
    input_shape: tuple[int, ...]
    full: Callable[[], Any] = dataclasses.field(repr=False, compare=False)

    @property
    def module(self) -> Any:
        """The runnable fx module (BatchNorm folded)."""
        return self.full().traced.module


@dataclasses.dataclass
class LazyWorkload:
    """A :class:`workloads.loader.Workload` whose graph, note and counts are at hand and
    whose inputs (torch tensors) are read or built on first use.

    A run that changes the network in place (quantizes its weights for the passes, then
    lets it go before forking its simulations: :func:`simulator.runner.flow.run`) takes it
    with :meth:`own` and drops it with :meth:`release`."""

    traced: LazyTraced
    note: str
    info: dict[str, Any]
    keep_images: int | None
    eval_count: int
    has_labels: bool
    full: _Source = dataclasses.field(repr=False, compare=False)
    #: the artifact cache's key of this workload (:func:`workload_key`; None: built
    #: without a cache), which the keys of its mapping and timing plan start from
    key: str | None = None

    def own(self) -> Any:
        """The full workload (:class:`workloads.loader.Workload`), this object's alone from
        now on, to change in place: taken out of the cache's in-memory layer (a later
        workload of the same key reads the artifact from disk), or copied when the
        in-memory layer gave it (another workload of this process may hold it). Call
        :meth:`release` once done with it."""
        return self.full.own()

    def release(self) -> bool:
        """Drop the network and the inputs from this object (after :meth:`own`: the
        changed ones); the next use reads them from the cache again, or builds them.
        Whether they were held (read or built since)."""
        return self.full.release()

    @property
    def calib_inputs(self) -> Any:
        return self.full().calib_inputs

    @property
    def eval_inputs(self) -> Any:
        return self.full().eval_inputs

    @property
    def eval_labels(self) -> Any:
        return self.full().eval_labels

    @property
    def tuning(self) -> Any:
        return self.full().tuning


class CaptureCache:
    """Keys of one scenario's capture step: ``fetch(kind, compute, policy=None)``."""

    def __init__(self, cache: ArtifactCache, sc: Any, specs: dict[str, Any],
                 weight_bits: int | None = None, crossbar: dict[str, Any] | None = None,
                 ) -> None:
        self.cache = cache
        self.weight_bits = weight_bits  # the captured weights are quantized to these bits
        # the exact crossbar mode: its parameters and the device it runs on
        self.crossbar = ({"crossbar": crossbar, "device": sc.workload.device}
                         if crossbar is not None else None)
        self.wkey = workload_key(sc)
        self.base_dir = sc.base_dir
        quant = sc.quantization.model_dump(mode="json")
        grouped = sorted((n, s.module, bool(s.signed_input)) for n, s in specs.items())
        self.scales_key = _digest({"kind": "scales", "workload": self.wkey, "quant": quant,
                                   "layers": grouped})
        self.layout = sorted((n, [list(r) for r in s.row_ranges]) for n, s in specs.items())

    def fetch(self, kind: str, compute: Callable[[], T], policy: Any = None) -> T:
        """The artifact *kind* (``scales``, ``float_accuracy``, ``precision``,
        ``adc_range``) of this capture."""
        if kind == "scales":
            key = self.scales_key
        elif kind == "float_accuracy":
            key = _digest({"kind": kind, "workload": self.wkey})
        elif kind == "precision":
            key = self._precision_key(policy)
        elif kind == "adc_range":
            key = _digest({"kind": kind, "scales": self.scales_key, "exact": self.crossbar})
        else:
            raise ValueError(f"unknown artifact kind {kind!r}")
        return self.cache.get_or_compute(kind, key, compute)

    def _precision_key(self, policy: Any) -> str:
        pdump = policy.model_dump(mode="json")
        key = {"kind": "precision", "scales": self.scales_key, "policy": pdump,
               "files": referenced_files(pdump, self.base_dir),
               "layout": self.layout, "weight_bits": self.weight_bits}
        if self.crossbar is not None:
            key["exact"] = self.crossbar
        return _digest(key)

    def fetch_precision(self, pipes: dict[str, Any],
                        compute: Callable[[dict[str, Any]], dict[str, T]]) -> dict[str, T]:
        """The bit planes of every pipeline of *pipes* (name -> PolicySpec): the cached
        ones read, the others computed by one ``compute(missing pipes)`` (one shared pass)."""
        keys = {n: self._precision_key(p) for n, p in pipes.items()}
        missing = {n: p for n, p in pipes.items() if not self.cache.has("precision", keys[n])}
        computed = compute(missing) if missing else {}

        def value(n: str) -> T:
            return computed[n] if n in computed else compute({n: pipes[n]})[n]

        return {n: self.cache.get_or_compute("precision", keys[n], lambda n=n: value(n))
                for n in pipes}
