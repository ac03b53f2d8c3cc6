"""The Ray backend: one long-lived actor per worker slot, each running many runs.

Imported only for `--engine ray` (Ray is the optional extra `pairzoo[ray]`). A Ray worker pays
several seconds to import TensorFlow and trace a step, as much as a whole run of these models,
so runs are not Ray tasks: each actor keeps its process, and with it pairzoo.fastpath's traced
steps, for the whole experiment (see engines.Dispatcher for who gets which run).

A local instance (no --address, no RAY_ADDRESS) stays on this machine and in places pairzoo
chooses (measured with Ray 2.60, see ../shared/FACTS.md):
- it binds loopback only: `_node_ip_address="127.0.0.1"` alone was rewritten and Ray listened
  on every interface; with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 as well it bound 127.0.0.1 only;
- token auth on (Ray's default for a new local instance), its token written by us (0600) in
  pairzoo's Ray folder, not ~/.ray/auth_token;
- its session files and sockets in that folder, not /tmp/ray; usage stats off; no dashboard.
A cluster (--address or RAY_ADDRESS) is the cluster's business: its auth and paths apply.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import secrets
import socket
import tempfile
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.experiments.engines import WorkerDied
from pairzoo.experiments.plan import PlannedRun
from pairzoo.experiments.runner import train_row


def default_ray_dir() -> Path:
    """PAIRZOO_RAY_DIR, else a folder of this user's in the temporary directory. Keep it short:
    Ray puts unix sockets under it, and a socket's path has at most ~107 characters."""
    if os.environ.get("PAIRZOO_RAY_DIR"):
        return Path(os.environ["PAIRZOO_RAY_DIR"])
    return Path(tempfile.gettempdir()) / f"pairzoo-ray-{os.getuid()}"


def local_ray_environment(ray_dir: Path) -> dict[str, str]:
    """Environment for a local instance: loopback only, our token, no usage stats. Set before
    ray.init, which passes it on to the processes Ray starts."""
    token = ray_dir / "auth_token"
    if not token.exists():
        ray_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(32))
    # RAY_AUTH_MODE stays unset: ray.init then turns token auth on for a new local instance
    # itself, refreshing its cached config (set beforehand, a driver that had already imported
    # Ray kept "disabled" and was refused by its own GCS), and takes the token from our path.
    return {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0"}


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds when nothing listens at a cluster address: ray.init would retry for
    minutes, printing C++ warnings. "auto" (find a running local cluster) is left to Ray."""
    if address in ("auto", "local"):
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise PairzooError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, or "
                           "ray://10.0.0.5:10001 for Ray Client)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise PairzooError(f"no Ray cluster answers at {address} "
                           f"({error.strerror or error}); start one with `ray start --head` "
                           "or fix --address / RAY_ADDRESS") from None


class RayBackend:
    def __init__(self, workers: int | None, *, address: str | None = None,
                 gpus_per_run: float = 0.0, device: str | None = None, train_fn=None,
                 ray_dir: Path | None = None):
        if importlib.util.find_spec("ray") is None:
            raise PairzooError("--engine ray needs Ray: pip install 'pairzoo[ray]'")
        if gpus_per_run < 0 or gpus_per_run > 1 and gpus_per_run != int(gpus_per_run):
            raise PairzooError(f"--gpus-per-run takes a fraction of one GPU (0.25) or whole "
                               f"GPUs (2); got {gpus_per_run}")
        self.ray = None  # imported by start(), after the environment for a local instance is set
        self.requested, self.workers = workers, workers or 0
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        if self.address:
            check_reachable(self.address)  # before any output: a wrong address is one line
        self.gpus_per_run, self.device, self.train_fn = gpus_per_run, device, train_fn
        self.ray_dir = Path(ray_dir) if ray_dir else default_ray_dir()
        self._actors: dict = {}
        self._started_ray = False
        self._saved_env: dict[str, str | None] = {}

    # --- the instance --------------------------------------------------------------------

    def _init(self) -> None:
        if not self.address:  # before Ray's import: it reads its auth settings on import
            for key, value in local_ray_environment(self.ray_dir).items():
                if key not in os.environ:  # the user's own settings win
                    self._saved_env[key] = None
                    os.environ[key] = value
            if "RAY_AUTH_MODE" not in os.environ:  # ray.init sets it: unset it again at stop
                self._saved_env["RAY_AUTH_MODE"] = None
        import ray

        self.ray = ray
        if ray.is_initialized():  # the caller's own Ray session: use it, leave it running
            return
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR,
                 "configure_logging": True}
        try:
            if self.address:
                ray.init(address=self.address, **quiet)
            else:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", _temp_dir=str(self.ray_dir / "session"),
                         **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            self._restore_env()
            where = self.address or "a local instance"
            raise PairzooError(f"could not start Ray on {where}: {str(error).splitlines()[0]}; "
                               "check --address (ray status shows the cluster's)") from None
        self._started_ray = True

    def _cluster_workers(self) -> int:
        resources = self.ray.cluster_resources()
        workers = int(resources.get("CPU", 1))
        if self.gpus_per_run:
            gpus = resources.get("GPU", 0)
            if gpus < self.gpus_per_run:
                raise PairzooError(f"--gpus-per-run {self.gpus_per_run}: the Ray cluster has "
                                   f"{gpus:g} GPUs; drop the option to train on CPUs")
            workers = min(workers, int(gpus / self.gpus_per_run))
        return max(workers, 1)

    def _actor(self):
        env = {"TF_FORCE_GPU_ALLOW_GROWTH": "true",  # runs share a card: memory on demand
               # an actor holds one CPU of Ray's: one TF thread per pool, or actors oversubscribe
               "PAIRZOO_TF_THREADS": os.environ.get("PAIRZOO_TF_THREADS", "1,1")}
        return _worker_class(self.ray).options(
            num_cpus=1, num_gpus=self.gpus_per_run, runtime_env={"env_vars": env},
        ).remote(self.device, self.train_fn)

    # --- the backend interface (engines.Dispatcher) -----------------------------------------

    def start(self) -> None:
        self._init()
        self.workers = self.requested or self._cluster_workers()
        self._actors = {slot: self._actor() for slot in range(self.workers)}

    def submit(self, slot: int, run: PlannedRun):
        return self._actors[slot].train.remote(run)

    def wait_any(self, handles):
        ray = self.ray
        ready, _ = ray.wait(handles, num_returns=1)
        handle = ready[0]
        try:
            return handle, ray.get(handle)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
            return handle, WorkerDied(f"Ray worker died: {str(error).splitlines()[0]}")
        except ray.exceptions.RayTaskError as error:
            return handle, error.cause if error.cause is not None else error

    def restart(self, slot: int) -> None:
        with contextlib.suppress(Exception):  # already gone
            self.ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._actor()

    def stop(self) -> None:
        for actor in self._actors.values():
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        self._actors = {}
        if self._started_ray:
            self.ray.shutdown()  # stops only what this ray.init started
            self._started_ray = False
        self._restore_env()

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}


class RunWorker:
    """A Ray actor's body: one process that trains run after run (its traced steps stay)."""

    def __init__(self, device, train_fn):
        import pairzoo  # noqa: F401  (its quiet start precedes TensorFlow's import)

        self.device, self.train_fn = device, train_fn

    def train(self, run: PlannedRun) -> dict:
        return train_row(run, self.device, self.train_fn)


@functools.cache
def _worker_class(ray):
    """The actor class, made once (ray.remote needs Ray imported, which waits for start())."""
    return ray.remote(RunWorker)
