"""The Ray backend: one long-lived actor per worker slot, each running many runs.

Imported only for `--engine ray` (Ray is the optional extra `pairzoo[ray]`). A Ray worker pays
several seconds to import TensorFlow and trace a step, as much as a whole run of these models,
so runs are not Ray tasks: each actor keeps its process, and with it pairzoo.fastpath's traced
steps, for the whole experiment (see dispatch.Dispatcher for who gets which run).

A local instance (no --address, no RAY_ADDRESS) stays on this machine and in places pairzoo
chooses (Ray 2.60):
- loopback only. Ray binds its servers to 127.0.0.1 only when the node's address is a
  loopback one, and ray.init rewrites `_node_ip_address="127.0.0.1"` (and a loopback --address)
  to the machine's routable address unless Ray's "local only" switch is on. That switch,
  ray_constants.ENABLE_RAY_CLUSTER, is read from RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when Ray is
  first imported: a process that imported Ray before pairzoo set the variable (a test, a
  notebook) listened on every interface. So pairzoo sets both, checks the node's address after
  ray.init, and refuses to go on if it is not loopback;
- token auth on, its token ours (see ray_folder: folder 0700, token 0600, checked);
- its session files, sockets and logs in a folder of its own inside that one (not /tmp/ray),
  removed when it stops (kept when Ray failed to start); usage stats off; no dashboard;
- stopped with the command, however the command ends (see ray_watchdog).
A cluster (--address or RAY_ADDRESS) is the cluster's business: its auth and paths apply. Joining
it is tried first in a throwaway process with a deadline (Ray itself retries for many minutes,
printing warnings), so a cluster that cannot be joined is one line within about 30 s.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import ipaddress
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pairzoo.errors import PairzooError
from pairzoo.experiments.dispatch import WorkerDied
from pairzoo.experiments.plan import PlannedRun
from pairzoo.experiments.ray_folder import default_ray_dir, secure_ray_dir
from pairzoo.experiments.ray_watchdog import Watchdog
from pairzoo.experiments.runner import train_row

LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": Ray keeps loopback addresses
JOIN_TIMEOUT_ENV = "PAIRZOO_RAY_JOIN_TIMEOUT"  # seconds to join a cluster (default 30)
JOIN_TIMEOUT = 30.0


def local_ray_environment(ray_dir: Path) -> dict[str, str]:
    """Environment for a local instance: loopback only, our token, no usage stats, no Ray
    warnings in the terminal. Set before ray.init, which passes it to the processes Ray
    starts. Checks (or creates) the Ray folder and token first."""
    token = secure_ray_dir(ray_dir)
    # RAY_AUTH_MODE stays unset: ray.init then turns token auth on for a new local instance
    # itself, refreshing its cached config (set beforehand, a driver that had already imported
    # Ray kept "disabled" and was refused by its own GCS), and takes the token from our path.
    return {LOCAL_ONLY_ENV: "0", "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of HOST:PORT or ray://HOST:PORT; PairzooError otherwise."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise PairzooError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, or "
                           "ray://10.0.0.5:10001 for Ray Client)")
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in seconds when nothing listens at a cluster address: ray.init would retry for
    minutes, printing C++ warnings. "auto" (find a running local cluster) is left to Ray."""
    if address in ("auto", "local"):
        return
    host, port = split_address(address)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise PairzooError(f"no Ray cluster answers at {address} "
                           f"({error.strerror or error}); start one with `ray start --head` "
                           "or fix --address / RAY_ADDRESS") from None


# A driver that joins the cluster and says how big it is. Its output (Ray's warnings) is read
# by join_failure, never shown.
_JOIN_PROBE = """import json, logging, sys
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level=logging.ERROR)
print("PAIRZOO-JOINED", json.dumps(ray.cluster_resources()))
"""


def check_joinable(address: str, timeout: float | None = None) -> None:
    """Join the cluster once from a throwaway process, killed after `timeout` seconds (default
    PAIRZOO_RAY_JOIN_TIMEOUT, else 30); PairzooError with Ray's reason and the likely fix when
    it cannot. Uses this process's environment (set up by the caller as for the real join)."""
    if timeout is None:
        timeout = float(os.environ.get(JOIN_TIMEOUT_ENV) or JOIN_TIMEOUT)
    with tempfile.TemporaryFile() as output:
        probe = subprocess.Popen([sys.executable, "-c", _JOIN_PROBE, address],
                                 stdin=subprocess.DEVNULL, stdout=output,
                                 stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, "RAY_BACKEND_LOG_LEVEL": "warning"})
        try:
            probe.wait(timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(probe.pid, signal.SIGKILL)
            probe.wait()
            timed_out = True
        except BaseException:  # interrupted: the probe must not outlive us
            with contextlib.suppress(OSError):
                os.killpg(probe.pid, signal.SIGKILL)
            probe.wait()
            raise
        output.seek(0)
        text = output.read().decode(errors="replace")
    if probe.returncode == 0 and "PAIRZOO-JOINED" in text:
        return
    raise PairzooError(join_failure(address, text, timeout if timed_out else None))


def join_failure(address: str, output: str, timed_out_after: float | None) -> str:
    """One line from a failed join (the probe's output, Ray's warnings included): Ray's reason
    and the likely fix."""
    when = (f"within {timed_out_after:g} s" if timed_out_after is not None
            else "(Ray gave up)")
    host = None if address in ("auto", "local") else split_address(address)[0]
    tried = re.findall(r"Failed to connect to GCS at address (\S+?)(?: within|[.,;]?\s|$)",
                       output)
    # Python's last traceback lines, their exception names with or without a module path
    # ("ray.exceptions.AuthenticationError: ..."), the path left out
    errors = re.findall(r"^(?:\w+\.)*(\w*(?:Error|Exception): .*)$", output, re.MULTILINE)
    denied = [error for error in errors if error.startswith("AuthenticationError")]
    node_fix = (f"pairzoo must run on a node of that cluster (`ray start --address={address}` "
                "on this machine first) with the cluster's Ray and Python versions, or use Ray "
                "Client (ray://HEAD:10001)")
    if denied:  # whatever else failed around it, this is the reason
        reason = denied[-1].split(". ")[0].rstrip(".")[:200]  # Ray's help text follows
        fix = ("the cluster uses token authentication: give this process its token "
               "(RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH naming the "
               "token file)")
    elif tried and host is not None and split_address(tried[-1])[0] != host:
        reason = f"Ray turned it into {tried[-1]}, this machine's address, where no GCS answers"
        fix = ("start the head with --node-ip-address set to the address you pass here "
               f"(`ray status --address={address}` shows the head's)")
    elif errors:
        reason, fix = errors[-1][:200], node_fix
    elif tried:
        reason = f"no Ray GCS answers at {tried[-1]}"
        fix = "pass the head's GCS port (`ray start --head` prints it; Ray's default is 6379)"
    else:
        lines = [_without_log_prefix(line) for line in output.strip().splitlines()]
        reason, fix = (lines[-1][:200] if lines else "no answer"), node_fix
    return f"could not join the Ray cluster at {address} {when}: {reason}; {fix}"


def _without_log_prefix(line: str) -> str:
    """Ray's C++ log line without its "[date time level pid tid] file.cc:123: " prefix."""
    return re.sub(r"^\[[^\]]*\]\s*\S+:\d+:\s*", "", line)


@contextlib.contextmanager
def _ray_output_captured():
    """File descriptor 2 goes to a temporary file while Ray connects: its C++ warnings must not
    reach the user's terminal. Yields a function returning what was captured."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lambda: (capture.seek(0), capture.read().decode(errors="replace"))[1]
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


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
        self.gpus_per_run, self.device, self.train_fn = gpus_per_run, device, train_fn
        self.ray_dir = Path(ray_dir) if ray_dir else default_ray_dir()
        # before any output: a wrong address, or an unsafe Ray folder, is one line
        if self.address:
            check_reachable(self.address)
        else:
            self._local_env = local_ray_environment(self.ray_dir)
        self._actors: dict = {}
        self._started_ray = False
        self._watchdog: Watchdog | None = None
        self._keep_logs = False  # a failed start keeps the instance's folder: its logs
        self._saved_env: dict[str, str | None] = {}
        self._saved_local_only = None

    # --- the instance --------------------------------------------------------------------

    def _init(self) -> None:
        local = not self.address
        if local:  # before Ray's import where possible: it reads its auth settings on import
            for key, value in self._local_env.items():
                if key == LOCAL_ONLY_ENV or key not in os.environ:  # else the user's wins
                    self._set_env(key, value)
            if "RAY_AUTH_MODE" not in os.environ:  # ray.init sets it: unset it again at stop
                self._saved_env["RAY_AUTH_MODE"] = None
        if local or self.address in ("auto", "local") or is_loopback(
                split_address(self.address)[0]):
            self._keep_on_loopback()  # a cluster on this machine's loopback: stay there too
        # Ray's C++ warnings (a slow GCS, a lost node) are not the user's business
        self._set_env("RAY_BACKEND_LOG_LEVEL", os.environ.get("RAY_BACKEND_LOG_LEVEL",
                                                              "error"))
        import ray

        self.ray = ray
        if ray.is_initialized():  # the caller's own Ray session: use it, leave it running
            self._restore_env()
            return
        self._started_ray = True  # from here on, whatever Ray holds is ours to stop
        try:
            if not local:
                check_joinable(self.address)
            self._connect(local)
            if local:
                self._check_on_loopback()
        except BaseException:  # a failure, Ctrl-C or SIGTERM: nothing of Ray's may stay
            self._stop_instance()
            raise

    def _connect(self, local: bool) -> None:
        """ray.init, quiet: Ray's log lines go to its files (and, while it connects, to a
        captured file descriptor 2), not to the user's terminal."""
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR,
                 "configure_logging": True}
        on_sigterm = _sigterm_handler()  # ray.init replaces it with its own: put it back
        terminated = False
        try:
            with _ray_output_captured() as captured:
                try:
                    if local:
                        # a folder of the instance's own, by which the watchdog knows its
                        # processes; short: Ray's socket paths (<= ~107 characters) are in it
                        folder = self.ray_dir / f"i-{secrets.token_hex(4)}"
                        self._watchdog = Watchdog(folder)
                        with self._watchdog.mark():
                            self.ray.init(num_cpus=os.cpu_count(), include_dashboard=False,
                                          _node_ip_address="127.0.0.1", _temp_dir=str(folder),
                                          **quiet)
                    else:
                        self.ray.init(address=self.address, **quiet)
                except (ConnectionError, RuntimeError, ValueError) as error:
                    if not local:
                        raise PairzooError(join_failure(self.address, f"{captured()}\n{error}",
                                                        None)) from None
                    self._keep_logs = True
                    raise PairzooError(f"could not start a local Ray instance: "
                                       f"{str(error).strip().splitlines()[0]}; Ray's logs are "
                                       f"in {self._watchdog.folder}") from None
        except SystemExit as exit_:  # Ray's own handler took a SIGTERM during ray.init
            if exit_.code != signal.SIGTERM or on_sigterm is None:
                raise
            terminated = True
        finally:
            _restore_sigterm_handler(on_sigterm)
        if terminated:  # the caller's handler gets it, as if Ray had not been there (the
            if callable(on_sigterm):  # CLI's stops as Ctrl-C does); ray.init was cut short
                on_sigterm(signal.SIGTERM, None)  # either way
            raise KeyboardInterrupt("SIGTERM")

    def _keep_on_loopback(self) -> None:
        self._set_env(LOCAL_ONLY_ENV, "0")
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None and hasattr(constants, "ENABLE_RAY_CLUSTER"):
            self._saved_local_only = (constants, constants.ENABLE_RAY_CLUSTER)
            constants.ENABLE_RAY_CLUSTER = False  # read at import: the variable came too late

    def _check_on_loopback(self) -> None:
        """The node's address decides where Ray binds: refuse to go on if it is not loopback
        (a Ray version that no longer honours the switch)."""
        node_ip = self.ray.util.get_node_ip_address()
        if not is_loopback(node_ip):
            self._stop_instance()
            raise RuntimeError(f"the local Ray instance took the address {node_ip}, not "
                               "loopback, so it would listen beyond this machine; stopped it")

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

    # --- the backend interface (dispatch.Dispatcher) ----------------------------------------

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
        self._stop_instance()

    def _stop_instance(self) -> None:
        """ray.shutdown (it stops only what this ray.init started), then the watchdog ends any
        straggler of the instance; the environment and Ray's switch as they were."""
        if self._started_ray:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
            self._started_ray = False
        if self._watchdog is not None:  # it also removes the instance's folder, unless kept
            self._watchdog.stop(keep_folder=self._keep_logs)
            self._watchdog = None
        self._restore_env()

    def _set_env(self, key: str, value: str) -> None:
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self._saved_local_only is not None:
            constants, value = self._saved_local_only
            constants.ENABLE_RAY_CLUSTER = value
            self._saved_local_only = None


def _sigterm_handler():
    """This process's SIGTERM handler (None off the main thread, where it cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.getsignal(signal.SIGTERM)


def _restore_sigterm_handler(handler) -> None:
    """ray.init installs a SIGTERM handler of its own (sys.exit) in the driver and a C++ one
    that prints a stack trace; the caller's (pairzoo's CLI: stop as Ctrl-C does) comes back."""
    if handler is not None:
        signal.signal(signal.SIGTERM, handler)


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
