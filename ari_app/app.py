"""The one place where things are wired together.

`build_app` builds every store, service and adapter, and gives each long-lived resource (Redis,
the ARI session, the events reader) its own cleanup context, torn down in reverse order.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import structlog
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, RedisError

from ari_app.ari import AriClient, AriError, AriUnauthorized, EventStream
from ari_app.callback import http as callback_http
from ari_app.callback.intake import RateLimits
from ari_app.callback.dialer import CallbackDialer
from ari_app.callback.machine import CallbackCallMachine
from ari_app.callback.service import CallbackRequests
from ari_app.callback.stasis import CallbackStasis
from ari_app.snapshots import SnapshotStore
from ari_app.customers.service import Customers
from ari_app.escalation.service import Complaints, SupervisorDesk
from ari_app.escalation.stasis import ComplaintStasis
from ari_app.escalation.store import ComplaintStore
from ari_app.hold import http as hold_http
from ari_app.hold.machine import HoldSettings
from ari_app.hold.stasis import HoldStasis
from ari_app.hold.store import HoldStore
from ari_app.inbound.machine import FeatureCodes
from ari_app.inbound.stasis import InboundStasis
from ari_app.inbound.store import CallStore
from ari_app.timeline import Timeline
from ari_app.transfer import http as transfer_http
from ari_app.transfer.directory import Directory
from ari_app.transfer.machine import TransferSettings
from ari_app.transfer.stasis import TransferStasis
from ari_app.transfer.store import TransferStore
from ari_app.voicemail import http as voicemail_http
from ari_app.voicemail.notifier import VoicemailNotifier
from ari_app.voicemail.service import Voicemails
from ari_app.operators.service import OperatorService
from ari_app.policy import Policy
from ari_app.settings import Settings
from ari_app import http as api
from ari_app.keys import (
    ari_key, callback_calls_key, callbacks_key, customers_key, directory_key, events_key, inbound_key, policy_key,
    rate_limits_key, redis_key, settings_key, store_key, voicemails_key,
)

__all__ = ["StartupError", "build_app", "redacted"]

logger = structlog.get_logger()

class StartupError(RuntimeError):
    """The app cannot start; the message says exactly what to fix."""


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


async def check_redis(redis: Redis, url: str) -> None:
    try:
        await redis.ping()
    except AuthenticationError as exc:
        raise StartupError(f"Redis at {redacted(url)} refused the password: {exc}") from exc
    except (RedisError, OSError) as exc:
        raise StartupError(f"Redis not reachable at {redacted(url)}: {exc}") from exc


async def check_ari(ari: AriClient, user: str) -> None:
    try:
        await ari.ping()
    except AriUnauthorized as exc:
        raise StartupError(
            f"ARI at {ari.base_url} rejected user {user!r} ({exc.message}): check the user "
            "in ari.conf and ETIQUETTE_ARI_USER / ETIQUETTE_ARI_PASSWORD") from exc
    except AriError as exc:
        raise StartupError(f"ARI not usable at {ari.base_url}: {exc.message}") from exc


def build_app(settings: Settings, policy: Policy) -> web.Application:
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware])
    app[settings_key] = settings
    app[policy_key] = policy
    app.add_routes(api.routes)
    app.add_routes(hold_http.routes)
    app.add_routes(transfer_http.routes)
    app.add_routes(callback_http.routes)
    app.add_routes(voicemail_http.routes)
    app[directory_key] = Directory(policy)

    async def redis_ctx(app: web.Application):
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3)
        await check_redis(redis, settings.redis_url)
        app[redis_key] = redis
        app[store_key] = CallStore(redis)
        app[customers_key] = customers = Customers(redis)
        app[callbacks_key] = CallbackRequests(redis, policy, customers=customers)
        app[rate_limits_key] = RateLimits(redis, policy.callback)
        notifier = VoicemailNotifier(settings.voicemail_webhook) if settings.voicemail_webhook else None

        def voicemail_left(voicemail) -> None:
            asyncio.get_running_loop().create_task(customers.note(
                voicemail.caller_number, "voicemail left", voicemail=voicemail.id,
                for_whom=voicemail.for_whom, call_id=voicemail.call_id))
            if notifier is not None:
                notifier(voicemail)

        app[voicemails_key] = Voicemails(redis, on_created=voicemail_left)
        yield
        if notifier is not None:
            await notifier.close()
        await redis.aclose()

    async def ari_ctx(app: web.Application):
        ari = AriClient(settings.ari_url, settings.ari_user,
                        settings.ari_password.get_secret_value(),
                        request_timeout=settings.ari_request_timeout,
                        pool_size=settings.ari_pool_size)
        try:
            await check_ari(ari, settings.ari_user)
        except StartupError:
            await ari.close()
            raise
        app[ari_key] = ari
        yield
        await ari.close()

    async def calls_ctx(app: web.Application):
        ari, redis = app[ari_key], app[redis_key]
        operators = OperatorService(ari, redis, policy.operators.endpoints)
        rules = policy.hold
        hold = HoldStasis(
            ari, HoldStore(redis), Timeline(redis), app[callbacks_key], app[voicemails_key],
            app=settings.ari_app, moh_class=rules.moh_class, reason_prompts=dict(rules.reasons),
            settings=HoldSettings(check_in_interval=rules.check_in_interval,
                                  fallback_after=rules.fallback_after,
                                  choice_timeout=rules.fallback_choice_timeout,
                                  fallback_default=rules.fallback_default,
                                  max_holds_per_call=rules.max_holds_per_call))
        codes, moves = policy.feature_codes, policy.transfer
        timeline, callbacks = Timeline(redis), app[callbacks_key]
        transfer = TransferStasis(
            ari, TransferStore(redis), timeline, app=settings.ari_app, moh_class=rules.moh_class,
            settings=TransferSettings(ring_timeout=moves.ring_timeout,
                                      choice_timeout=moves.choice_timeout,
                                      accept_timeout=moves.accept_timeout,
                                      check_in_interval=rules.check_in_interval,
                                      recording_notice=policy.recording.enabled,
                                      complete_code=codes.transfer, cancel_code=codes.resume))
        complaint = ComplaintStasis(
            ari, ComplaintStore(redis), timeline, Complaints(redis), callbacks,
            app=settings.ari_app, window_minutes=policy.supervisor.callback_window)
        desk = SupervisorDesk(policy.supervisor, policy.business_hours,
                              OperatorService(ari, redis, policy.supervisor.endpoints))
        inbound = InboundStasis(
            ari, app[store_key], operators, hold, transfer, complaint, app[directory_key], desk,
            customers=app[customers_key],
            number_region=(policy.callback.allowed_countries[0]
                           if len(policy.callback.allowed_countries) == 1 else None),
            app=settings.ari_app, recording_notice=policy.recording.enabled,
            moh_class=rules.moh_class, ring_timeout=policy.operators.ring_timeout,
            codes=FeatureCodes(codes.hold, codes.resume, tuple(rules.reasons), codes.transfer,
                               codes.supervisor, moves.mode,
                               policy.supervisor.caller_key_allowed))
        dialer = CallbackDialer(redis, app[callbacks_key], operators, app[customers_key], policy,
                                supervisors=desk.supervisors)
        callback_calls = CallbackStasis(
            ari, SnapshotStore(redis, "callback-call", CallbackCallMachine), timeline,
            app=settings.ari_app, dial_template=policy.callback.dial,
            ring_timeout=policy.callback.ring_timeout,
            operator_ring_timeout=policy.operators.ring_timeout,
            company_id=f'"{policy.company}"', on_finished=dialer.finished)
        dialer.stasis = callback_calls

        def on_event(event: dict) -> None:  # callback calls have ids of their own
            callback_calls.on_event(event)
            inbound.on_event(event)

        events = EventStream(ari, settings.ari_app, on_event, on_connected=inbound.reconcile)
        app[callback_calls_key] = callback_calls
        app[inbound_key], app[events_key] = inbound, events
        reader = asyncio.create_task(events.run(), name="ari-events")
        dialing = (asyncio.create_task(dialer.run(), name="callback-dialer")
                   if settings.callback_dialer else None)
        try:
            await asyncio.wait_for(_first_connect(events, reader), timeout=15)
        except asyncio.TimeoutError as exc:
            reader.cancel()
            raise StartupError(f"ARI events WebSocket at {ari.base_url} not answering") from exc
        logger.info("app ready", ari=settings.ari_url, app_name=settings.ari_app,
                    operators=list(policy.operators.endpoints))
        yield
        for task in (reader, dialing):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (reader, dialing) if t), return_exceptions=True)
        await callback_calls.close()
        await inbound.close()

    app.cleanup_ctx.extend([redis_ctx, ari_ctx, calls_ctx])
    return app


async def _first_connect(events: EventStream, reader: asyncio.Task) -> None:
    """Wait for the first connection, surfacing a reader that died (e.g. a wrong password)."""
    waiter = asyncio.create_task(events.connected.wait())
    done, _ = await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
    if reader in done:
        waiter.cancel()
        exc = reader.exception()
        raise StartupError(f"ARI events stopped: {exc}") from exc
