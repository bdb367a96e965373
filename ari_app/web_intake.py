"""The public "call me back" form on processes of its own: `ari-etiquette intake`.

The form is the one route the internet reaches, and at a campaign's peak the one that takes
thousands of requests a second. Here it runs apart from call control, on as many processes as
there are cores to give it, all on one port (SO_REUSEPORT: the kernel spreads connections over
them): a burst of forms never takes CPU from a caller's check-in, and the call-control API is
not on the public port at all. Every process stores into the same Redis with the same checks,
limits and merge as the app (callback/), so it makes no difference which one a form reaches;
nothing here talks to Asterisk.

    GET  /callback              the page
    POST /api/callbacks         a request (the page's CSRF token, or the bearer token)
    GET  /api/callbacks/{id}    its status
    GET  /healthz               200 while Redis answers
"""

from __future__ import annotations

import multiprocessing
import os
import signal

import structlog
from aiohttp import web

from ari_app import http as api
from ari_app.app import StartupError, check_redis
from ari_app.callback import http as callback_http
from ari_app.callback.keys import callbacks_key, rate_limits_key
from ari_app.callback.service import intake_services
from ari_app.customers.keys import customers_key
from ari_app.keys import policy_key, redis_key, settings_key
from ari_app.log import client_faults_as_warnings
from ari_app.policy import Policy
from ari_app.settings import Settings
from ari_app.storage import Keyspace, storage_away
from ari_app.storage.connect import storage_client

__all__ = ["PUBLIC_ROUTES", "build_intake_app", "run_intake"]

logger = structlog.get_logger()
PUBLIC_ROUTES = {("GET", "/callback"), ("POST", "/api/callbacks"),
                 ("GET", "/api/callbacks/{request_id}")}


def build_intake_app(settings: Settings, policy: Policy) -> web.Application:
    client_faults_as_warnings()
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware],
                          client_max_size=api.MAX_BODY)
    app[settings_key], app[policy_key] = settings, policy
    app.add_routes([route for route in callback_http.routes
                    if (route.method, route.path) in PUBLIC_ROUTES])
    app.router.add_get("/healthz", health)

    async def redis_ctx(app: web.Application):
        redis = storage_client(settings)
        await check_redis(redis, settings)
        app[redis_key] = redis
        app[customers_key], app[callbacks_key], app[rate_limits_key] = intake_services(
            redis, policy, Keyspace())
        yield
        await redis.aclose()

    app.cleanup_ctx.append(redis_ctx)
    return app


async def health(request: web.Request) -> web.Response:
    """200 while Redis answers (what a load balancer needs of an intake process), with the
    process id: which of the processes answered."""
    try:
        await request.app[redis_key].ping()
    except Exception as exc:  # noqa: BLE001 - any storage failure is "not ready"
        if not storage_away(exc):
            raise
        return web.json_response({"status": "storage-unavailable", "pid": os.getpid()},
                                 status=503)
    return web.json_response({"status": "ok", "pid": os.getpid()})


def _serve(settings: Settings, policy: Policy) -> int:
    try:
        web.run_app(build_intake_app(settings, policy), host=settings.http_host,
                    port=settings.intake_port, reuse_port=True, print=None, access_log=None,
                    keepalive_timeout=15, shutdown_timeout=5)
    except StartupError as exc:
        logger.error("the callback intake cannot start", error=str(exc))
        return 1
    return 0


def _process(settings: Settings, policy: Policy) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's (run_app sets its own)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    raise SystemExit(_serve(settings, policy))


def run_intake(settings: Settings, policy: Policy, workers: int) -> int:
    """`workers` processes on one port; SIGTERM or SIGINT stops them all. One that dies is a
    logged error and the others go on (the port still answers); all gone: exit 1."""
    if workers == 1:
        return _serve(settings, policy)
    context = multiprocessing.get_context("fork")  # the policy and settings already read
    processes = [context.Process(target=_process, args=(settings, policy), daemon=False,
                                 name=f"intake-{i + 1}") for i in range(workers)]

    def stop(signum, frame) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)  # before the first fork: none is left behind
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.start()
    failed = 0
    for process in processes:
        process.join()
        if process.exitcode not in (0, -signal.SIGTERM):
            failed += 1
            logger.error("a callback intake process ended", process=process.name,
                         exit_code=process.exitcode)
    return 1 if failed == len(processes) else 0
