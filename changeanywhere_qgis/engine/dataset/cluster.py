"""A dataset's samples as tasks on a Dask cluster (``--scheduler``), and the checks that make its faults clear.

Before anything is written the scheduler's address is checked in bounded time: its form, then one Dask message
exchanged with whatever listens there (a web server, a silent port, a program answering other bytes: each ends
in one error, not a hang), then the workers, then that the scheduler and every worker can import this package
(the usual mistake: ``pip install`` on this machine only). While the run goes, a worker that dies has its task
run again by Dask on another one; when none is left the run stops with the number of samples kept.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from concurrent.futures import CancelledError
from dataclasses import replace
from pathlib import Path

from ..errors import Cancelled, InputError, WorkersLost
from .job import DatasetJob
from .sample import run_sample
from .workers import finished, named_write_failures

# Longest wait for a worker to come back when the cluster has none: Dask keeps the tasks, a restarted
# worker (its nanny, a batch system) picks them up. Past it the run stops and says how to resume.
NO_WORKERS_GRACE_S = 20.0
INSTALL = "pip install changeanywhere-qgis (or `pip install .` in a checkout of the same version)"


def connect_timeout() -> float:
    """Seconds to reach the scheduler: Dask's own setting (``distributed.comm.timeouts.connect``, 30 s unless
    changed in Dask's configuration or ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``)."""
    import dask
    from dask.utils import parse_timedelta

    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds"))


def engine_version() -> str:
    """This package's version (metadata.txt's, the plugin's): run on the scheduler and the workers, it fails there
    when the package cannot be imported, and says which version each has."""
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(Path(__file__).resolve().parents[2] / "metadata.txt", encoding="utf-8")
    return parser.get("general", "version", fallback="unknown").strip()


def _check_form(address: str) -> str:
    """``tcp://host:port`` (or ``host:port``); an InputError for anything Dask cannot connect to."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown protocol {scheme!r}")
        if scheme in ("tcp", "tls"):
            host, port = parse_host_port(location)
            if not host or not port:
                raise ValueError("no host or port")
    except (ValueError, TypeError) as exc:
        raise InputError(f"{address!r} is not a Dask scheduler address ({exc}). Give it as tcp://HOST:PORT, as "
                         "`dask scheduler` prints it (\"Scheduler at: tcp://...\"; port 8786 by default).") from None
    return address if "://" in address else f"tcp://{address}"


def _refused(address: str) -> bool:
    """Whether a TCP connection to ``address`` is refused now (nothing listens on the port)."""
    from distributed.comm.addressing import get_address_host_port

    try:
        host, port = get_address_host_port(address)
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False
    return False


def _probe(address: str, seconds: float) -> None:
    """Exchange one message with whatever listens at ``address``, all in ``seconds``; an InputError unless a Dask
    scheduler answers. Runs in its own thread and event loop, so a program that never answers cannot hold us."""
    from distributed.comm import connect

    async def identity():
        comm = await connect(address, timeout=seconds)  # the TCP connection and Dask's handshake
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    outcome: dict = {}

    def run() -> None:
        try:
            # a little longer than connect()'s own bound, so that its reason (e.g. connection refused) comes first
            outcome["reply"] = asyncio.run(asyncio.wait_for(identity(), seconds + 2))
        except BaseException as exc:  # noqa: BLE001 (reported below, whatever it is: MemoryError from garbage too)
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="dask-scheduler-probe", daemon=True)
    thread.start()
    thread.join(seconds + 6)
    reply, error = outcome.get("reply"), outcome.get("error")
    start = ("Check the address (the one `dask scheduler` prints, port 8786 by default; 8787 is its dashboard) "
             "and that the scheduler is running.")
    cannot = f"Cannot reach the Dask scheduler at {address}:"
    if thread.is_alive() or isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        raise InputError(f"{cannot} nothing answered as a Dask scheduler within {seconds:g} s (something else listens "
                         f"there, or a firewall drops the packets). {start}")
    if isinstance(error, OSError) and ("refused" in f"{error} {error.__cause__}".lower() or _refused(address)):
        # Dask retries a refused connection until its timeout and may end with no reason on a busy machine: one
        # plain connection says whether anything listens at all
        raise InputError(f"{cannot} nothing listens there (connection refused). {start}")
    if isinstance(error, OSError) and "Timed out trying to connect" in str(error):
        raise InputError(f"{cannot} no connection within {seconds:g} s ({error.__cause__ or error}). {start}")
    if error is not None:
        raise InputError(f"{cannot} what listens there is not a Dask scheduler: it answered something else "
                         f"({type(error).__name__}). {start}")
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        what = reply.get("type") if isinstance(reply, dict) else None
        raise InputError(f"{cannot} what listens there is " + (f"a Dask {what}, not the scheduler" if what else
                                                                "not a Dask scheduler") + f". {start}")


def _check_environment(client, address: str, workers: dict) -> None:
    """The scheduler and every worker import this package, of this version; else an InputError naming them."""
    mine = engine_version()
    problems = []
    try:
        theirs = client.run_on_scheduler(engine_version)
        if theirs != mine:
            problems.append(f"the scheduler has version {theirs}")
    except Exception as exc:  # noqa: BLE001 (unpickling our function fails where the package is missing)
        problems.append(f"the scheduler cannot import it ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    for worker, value in client.run(engine_version, on_error="return").items():
        if isinstance(value, BaseException):
            problems.append(f"worker {worker} cannot import it ({type(value).__name__})")
        elif value != mine:
            problems.append(f"worker {worker} has version {value}")
    if problems:
        raise InputError(f"The Dask cluster at {address} lacks changeanywhere_qgis {mine} (this machine's): "
                         + "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
                         + f". Install it on the scheduler's and every worker's machine ({INSTALL}), then restart them.")


def connect(address: str):
    """A Dask client of the scheduler at ``address`` that has workers able to run samples, or an InputError saying
    why not; bounded in time (see :func:`connect_timeout`)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise InputError(f"A Dask scheduler was given but the 'distributed' package is missing ({exc}). "
                         "Install dask[distributed], or run with local workers.") from exc
    address = _check_form(address)
    seconds = connect_timeout()
    _probe(address, seconds)
    try:
        client = Client(address, set_as_default=False, timeout=seconds)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"Cannot reach the Dask scheduler at {address} ({exc}). Check the address "
                         "(e.g. tcp://host:8786) and that the scheduler is running.") from exc
    try:
        info = client.scheduler_info()["workers"]
        if not info:
            raise InputError(f"The Dask scheduler at {address} has no workers. Start some (dask worker {address}).")
        _check_environment(client, address, info)
    except BaseException:
        client.close()
        raise
    return client, info


def check_scheduler(address: str) -> None:
    """Reach the scheduler and see able workers there, before the run writes anything."""
    client, _ = connect(address)
    client.close()


def _lost(job: DatasetJob, address: str, why: str) -> WorkersLost:
    kept = len(finished(job))
    return WorkersLost(f"The Dask cluster at {address} {why}: {kept} of {job.count} samples are finished and kept in "
                       f"{job.out}. Start workers again (dask worker {address}) and rerun the same command (without "
                       "--overwrite) to finish the rest.", kept=kept, count=job.count, out=job.out)


def _wait_for_workers(client, job: DatasetJob, address: str, cancelled) -> None:
    """Return when the cluster has a worker; after NO_WORKERS_GRACE_S without one, raise WorkersLost."""
    since = time.monotonic()
    while not client.scheduler_info()["workers"]:
        if cancelled():
            raise Cancelled("")
        if time.monotonic() - since > NO_WORKERS_GRACE_S:
            raise _lost(job, address, f"has had no workers for {NO_WORKERS_GRACE_S:g} s")
        time.sleep(0.5)


def run_dask(job: DatasetJob, todo: list[int], address: str, tick, cancelled) -> dict:
    """Run ``todo``'s samples on the cluster; a sample whose worker died runs again on another one."""
    from distributed.utils import CancelledError as DaskCancelled

    try:
        from distributed.scheduler import KilledWorker
    except ImportError:  # older distributed
        KilledWorker = RuntimeError  # noqa: N806

    client, info = connect(address)
    try:
        if job.threads is None:
            cpus = client.run(os.cpu_count)
            per_host: dict[str, list] = {}
            for addr, w in info.items():
                per_host.setdefault(w["host"], []).append((addr, w["nthreads"]))
            job = replace(job, threads=min(max(1, (cpus[ws[0][0]] or 1) // sum(n for _, n in ws)) for ws in per_host.values()))
        remaining, ticked, rounds = list(todo), set(), 0
        while remaining:
            _wait_for_workers(client, job, address, cancelled)
            # The job (every sample's window) goes to the workers once; it dies with them, so each round sends it again.
            shared = client.scatter(job, broadcast=True)
            pending = {f: i for f, i in zip(client.map(run_sample, [shared] * len(remaining), remaining, pure=False), remaining)}
            try:
                _collect(client, pending, job, address, tick, ticked, cancelled, KilledWorker)
                break
            except (DaskCancelled, CancelledError):  # the job's data or a task was lost with its workers
                client.cancel(list(pending))
                done = finished(job)
                for index in sorted(done.intersection(remaining) - ticked):
                    ticked.add(index)
                    tick()
                remaining = [i for i in remaining if i not in done]
                rounds += 1
                if rounds > 5:  # workers keep dying: something kills them (memory, most likely)
                    raise _lost(job, address, f"lost its workers {rounds} times") from None
            except BaseException:
                client.cancel(list(pending))
                raise
        return {"workers": len(info), "threads_per_sample": job.threads}
    finally:
        client.close()


def _collect(client, pending: dict, job: DatasetJob, address: str, tick, ticked: set, cancelled, KilledWorker) -> None:  # noqa: N803
    """Wait for the samples' tasks, ticking each; the cluster left without workers too long raises WorkersLost."""
    from distributed import wait

    alone_since = None  # when the cluster was last seen without workers
    while pending:
        try:
            with client.as_current():  # wait() asks for the current client; this one is not the default
                done, _ = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:  # none finished within the second (Dask raises where concurrent.futures returns)
            done = ()
        for future in done:
            index = pending.pop(future)
            try:
                future.result()
            except KilledWorker as exc:  # the same sample took down several workers: memory, most likely
                raise _lost(job, address, f"lost a worker on each try of one sample ({exc}): most likely it ran out "
                                          "of memory; give the workers more memory or fewer threads") from exc
            except Exception as exc:
                with named_write_failures(job):
                    raise exc
            ticked.add(index)
            tick()
        if cancelled():
            raise Cancelled("")
        if pending and not client.scheduler_info()["workers"]:
            alone_since = alone_since or time.monotonic()
            if time.monotonic() - alone_since > NO_WORKERS_GRACE_S:
                raise _lost(job, address, f"has had no workers for {NO_WORKERS_GRACE_S:g} s")
        else:
            alone_since = None
