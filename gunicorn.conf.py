"""gunicorn's settings file: `gunicorn -c gunicorn.conf.py wsgi:app --workers 4 ...` (README).

Only hooks and the access-log format live here; workers, threads and bind stay on the
command line. Nothing here acts unless PROMETHEUS_MULTIPROC_DIR is set.

Metrics with several workers: set PROMETHEUS_MULTIPROC_DIR to a directory only this app's
processes write (e.g. /run/checkout/metrics; created if missing) in gunicorn's environment.
Each worker then writes its counters and histograms to files there and GET /metrics, in
whichever worker answers, adds up every process's files (prometheus-client's multiprocess
mode; checkout/metrics.py).
"""

from __future__ import annotations

import glob
import os
import re

# With --access-logfile, each line ends with the request id the app answered.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'

_PID_FILE = re.compile(r"_(\d+)\.db$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True


def on_starting(server: object) -> None:
    """Create the metrics directory and drop the files of processes that have ended (an
    earlier run's workers), so pids reused later do not inherit their numbers. Files of
    running processes (e.g. the webhook worker sharing the directory) stay."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        match = _PID_FILE.search(name)
        if match and not _running(int(match.group(1))):
            os.remove(name)


def child_exit(server: object, worker: object) -> None:
    """A worker ended: prometheus-client forgets its live gauges (its counters stay summed)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]
