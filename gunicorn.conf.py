"""gunicorn's settings file: `gunicorn -c gunicorn.conf.py wsgi:app --workers 4 ...` (README).

The worker model lives here (docs/benchmarks.md says why and what it gives): gthread, 256
threads per worker, and a worker accepts only as many connections as it has threads. A
create-payment request spends almost all its time waiting for the provider (0.2 to 2 s), and
a waiting thread holds no CPU, so 4 workers x 256 threads keep a thousand shoppers' payments
in flight while a page or a health check still finds a free thread; a worker with all
threads busy stops accepting, so a new connection goes to one that has a free thread instead
of queueing behind slow payments. The app lets only a couple of creations per worker compute
at once (`create_payment_turns`, checkout/concurrency.py): the rest wait for their provider
or their turn without contending for the interpreter. Bind and the worker count stay on the
command line (`--workers`, or WEB_CONCURRENCY). Each worker's database pool
(`database_pool_size` + `database_max_overflow`, default 20 + 0) must fit PostgreSQL's
max_connections times the workers: 4 workers x 20 stay under the default 100.

Nothing else here acts unless PROMETHEUS_MULTIPROC_DIR is set.

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

worker_class = "gthread"
threads = 256
worker_connections = threads  # gthread queues what it accepted beyond its threads: don't
workers = int(os.environ.get("WEB_CONCURRENCY") or 4)

# With --access-logfile, each line ends with the request id the app answered.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'

if os.environ.get("CHECKOUT_LOG_FORMAT", "").lower() == "json":
    # gunicorn's own lines (error log, access log) as JSON like the app's, masked, and the
    # request id in the access line's "request_id" field (checkout/gunicorn_logging.py).
    logger_class = "checkout.gunicorn_logging.JsonLogger"
    access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

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
