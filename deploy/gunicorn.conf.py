"""Gunicorn settings for the MissionHub image (used by deploy/Dockerfile's CMD).

Every value can be tuned from the environment without rebuilding the image.

Process model: by default ONE worker process with several threads per container, and
scale out with more containers (compose `--scale`, Kubernetes replicas/HPA). With one
process per container, django-prometheus' /metrics is that process's own registry, so
every scrape sees the same counters. If you raise WEB_CONCURRENCY above 1, also set
PROMETHEUS_MULTIPROC_DIR to an empty writable directory (e.g. /app/var/prometheus):
the hooks below then wipe it at start-up and mark exited workers dead, and
django-prometheus aggregates all workers' files on each scrape.
"""

import os
import shutil
from pathlib import Path

# Listen on every interface: the platform's load balancer / Service sends traffic here.
bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")

# Worker processes (gunicorn's own convention: WEB_CONCURRENCY) and threads in each.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))

# A request running longer than this is killed and the worker restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, in-flight requests get this long to finish (keep it below the platform's
# termination grace period: 40 s in deploy/k8s/base/web-deployment.yaml).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
# Idle keep-alive must outlast the load balancer's idle timeout (often 60 s), or the
# balancer may reuse a connection gunicorn has just closed (sporadic 502s).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "65"))

# Recycle a worker now and then to bound slow memory growth; jitter avoids all at once.
# With one worker nothing serves between the old one's exit and the new one's first
# request, so both ends are kept short: the app is loaded once in the master and forked
# (a worker started from scratch spent 1-2 s importing Django and the app), and a worker
# that has finished its last request leaves with os._exit (`worker_exit` below: Python's
# own shutdown of the worker took another 0.4-0.6 s). Measured in bench/README.md.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Import the app in the master before forking workers (GUNICORN_PRELOAD=0: in each worker).
# Nothing connects at import time (databases, Redis and the broker connect on first use,
# in the worker), so no connection is shared across the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"

# Heartbeat files in memory, not on the (read-only in Kubernetes) root filesystem.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR", "/dev/shm")  # noqa: S108 (gunicorn docs)
# Gunicorn's runtime control socket lives under $HOME, which is read-only: not needed.
control_socket_disable = True

# Logs: access log and error log to stdout/stderr, collected by the container runtime.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The default combined format plus the client address the proxy saw and the duration.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" xff="%({x-forwarded-for}i)s" %(M)sms'


def worker_exit(server, worker):
    """The last thing a worker does, after its last response: leave without Python's
    interpreter shutdown (atexit handlers, thread joins, module teardown), which the master
    would otherwise wait for before it forks the next worker. Logs are flushed first.

    Only a worker that ends normally (gunicorn's `sys.exit(0)` is on its way up) leaves
    this way: one that failed keeps its exit code, which tells the master to stop (a worker
    that cannot boot) rather than fork another."""
    import logging
    import sys

    leaving = sys.exc_info()[1]
    if not (isinstance(leaving, SystemExit) and leaving.code in (0, None)):
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# --- Prometheus multiprocess mode (only when PROMETHEUS_MULTIPROC_DIR is set) -----------


def on_starting(server):
    """Start from an empty metrics directory: files of a previous run would be summed."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        path = Path(directory)
        if path.exists():
            for child in path.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        path.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """Drop an exited worker's live gauges from the aggregate."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
