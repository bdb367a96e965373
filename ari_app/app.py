"""The one place where things are wired together.

`build_app` builds every store, service and adapter, and gives each long-lived resource (Redis,
the ARI session, the events reader) its own cleanup context, torn down in reverse order.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, RedisError

from ari_app.ari import AriClient, AriError, AriUnauthorized, EventStream
from ari_app.callback import http as callback_http
from ari_app.calls import http as calls_http
from ari_app.calls.etiquette_log import EtiquetteLog
from ari_app.calls.events import CallEvents
from ari_app.calls.legs import LegActions
from ari_app.calls.ownership import CallOwnership
from ari_app.calls.runner import RuleRunner
from ari_app.calls.metrics import CallMetrics
from ari_app.calls.nodes import NodeCalls, NodeEvents
from ari_app.calls.step_log import StepLog
from ari_app.calls.stream import LiveEvents
from ari_app.callback.dialer import CallbackDialer
from ari_app.callback.machine import CallbackCallMachine
from ari_app.callback.service import intake_services
from ari_app.callback.stasis import CallbackStasis
from ari_app.storage.snapshots import SnapshotStore
from ari_app.pool.keeper import POOL_EVENTS, STEPS as POOL_STEPS, ShardKeeper
from ari_app.storage.connect import storage_client, where
from ari_app.dashboard import http as dashboard_http
from ari_app.dashboard.keys import dashboard_key, today_key
from ari_app.dashboard.service import Dashboard
from ari_app.dashboard.today import TodayFigures
from ari_app.escalation import http as escalation_http
from ari_app.escalation.keys import complaints_key
from ari_app.escalation.service import Complaints, SupervisorDesk
from ari_app.escalation.stasis import ComplaintRule
from ari_app.escalation.store import ComplaintStore
from ari_app.hold import http as hold_http
from ari_app.callback.numbers import NumberRules
from ari_app.hold.machine import HoldSettings
from ari_app.hold.stasis import HoldRule
from ari_app.hold.store import HoldStore
from ari_app.calls.vocabulary import ToRule
from ari_app.console import http as console_http
from ari_app.console.keys import console_key
from ari_app.console.service import ConsoleService
from ari_app.inbound.machine import FeatureCodes, InvalidTransition
from ari_app.inbound.stasis import CallServices, InboundSettings, InboundStasis
from ari_app.inbound.store import CallStore
from ari_app.transfer import http as transfer_http
from ari_app.transfer.directory import Directory
from ari_app.transfer.machine import TransferSettings
from ari_app.transfer.stasis import TransferRule
from ari_app.transfer.store import TransferStore
from ari_app.voicemail import http as voicemail_http
from ari_app.voicemail.away import AwayMessages
from ari_app.voicemail.notifier import VoicemailNotifier
from ari_app.voicemail.service import Voicemails
from ari_app.operators import http as operators_http
from ari_app.operators.feature_codes import DeskCodes
from ari_app.operators.keys import operators_key
from ari_app.operators.service import OperatorPool, OperatorService, PoolSettings
from ari_app.operators.stasis import OperatorStasis
from ari_app.operators.store import OperatorStore
from ari_app.queue import http as queue_http
from ari_app.reports import http as reports_http
from ari_app.queue.dispatcher import QueueDispatcher
from ari_app.queue.keys import queues_key
from ari_app.queue.machine import OperatorOffered, QueueMachine
from ari_app.queue.service import QueueDesk
from ari_app.queue.stasis import QueueRule, queue_settings
from ari_app.staff import http as staff_http
from ari_app.staff.accounts import StaffAccounts, StaffFileError
from ari_app.staff.keys import accounts_key, staff_sessions_key
from ari_app.staff.sessions import Sessions
from ari_app.policy import Policy
from ari_app.settings import Settings
from ari_app.storage import Keyspace, storage_away
from ari_app.survey.stasis import SurveyRule
from ari_app.survey.store import SurveyStore
from ari_app.warning import http as warning_http
from ari_app.warning.stasis import WarningRule
from ari_app.warning.store import WarningStore
from ari_app.watchdog import Watched, Watchdog
from ari_app import http as api
from ari_app import openapi
from ari_app.callback.keys import callback_calls_key, callbacks_key, rate_limits_key
from ari_app.customers.keys import customers_key
from ari_app.inbound import http as inbound_http
from ari_app.inbound.keys import inbound_key, store_key
from ari_app.keys import (
    ari_key, ari_nodes_key, call_events_key, etiquette_log_key, events_key, live_events_key, metrics_key,
    policy_key, redis_key, sessions_key, settings_key, watchdog_key,
)
from ari_app.log import client_faults_as_warnings
from ari_app.transfer.keys import directory_key
from ari_app.voicemail.keys import voicemails_key

__all__ = ["StartupError", "build_app", "check_redis", "storage_client"]

logger = structlog.get_logger()

class StartupError(RuntimeError):
    """The app cannot start; the message says exactly what to fix."""


async def check_redis(redis: Redis, settings: Settings) -> None:
    try:
        await redis.ping()
    except AuthenticationError as exc:
        raise StartupError(f"Redis ({where(settings)}) refused the password: {exc}") from exc
    except (RedisError, OSError) as exc:
        raise StartupError(f"Redis not reachable ({where(settings)}): {exc}") from exc


async def check_ari(ari: AriClient, user: str, node: str | None = None) -> None:
    where = f"node {node}'s ARI" if node else "ARI"
    try:
        await ari.ping()
    except AriUnauthorized as exc:
        raise StartupError(
            f"{where} at {ari.base_url} rejected user {user!r} ({exc.message}): check the user "
            "in ari.conf and ETIQUETTE_ARI_USER / ETIQUETTE_ARI_PASSWORD") from exc
    except AriError as exc:
        raise StartupError(f"{where} not usable at {ari.base_url}: {exc.message}") from exc


def build_app(settings: Settings, policy: Policy) -> web.Application:
    client_faults_as_warnings()  # a client's malformed HTTP is not the app's error
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware],
                          client_max_size=api.MAX_BODY)
    app[settings_key] = settings
    app[policy_key] = policy
    app.add_routes(api.routes)
    app.add_routes(inbound_http.routes)
    app.add_routes(hold_http.routes)
    app.add_routes(transfer_http.routes)
    app.add_routes(callback_http.routes)
    app.add_routes(voicemail_http.routes)
    app.add_routes(escalation_http.routes)
    app.add_routes(calls_http.routes)
    app.add_routes(operators_http.routes)
    app.add_routes(queue_http.routes)
    app.add_routes(warning_http.routes)
    app.add_routes(reports_http.routes)
    app.add_routes(openapi.routes)
    app.add_routes(dashboard_http.routes)
    app.add_routes(staff_http.routes)
    app.add_routes(console_http.routes)
    app[directory_key] = Directory(policy)
    # every step of every rule is published once; these consume it (the etiquette log joins
    # once Redis is there)
    app[call_events_key] = call_events = CallEvents()
    app[metrics_key] = metrics = CallMetrics()
    app[live_events_key] = live = LiveEvents()
    for consumer in (StepLog(), metrics, live):
        call_events.subscribe(consumer)

    async def end_streams(app: web.Application) -> None:  # SIGTERM is not held up by them
        await live.close()

    app.on_shutdown.append(end_streams)

    keys = Keyspace()  # names every Redis key: the one place a key is spelled

    async def redis_ctx(app: web.Application):
        if settings.staff_file is not None:  # who may sign in to the console and the dashboard
            try:
                app[accounts_key] = StaffAccounts.load(settings.staff_file)
            except StaffFileError as exc:
                raise StartupError(str(exc)) from exc
        redis = storage_client(settings)
        await check_redis(redis, settings)
        app[redis_key] = redis
        # its own connections: the log's writes never take one a call is waiting for
        log_redis = storage_client(settings)
        app[etiquette_log_key] = log = EtiquetteLog(log_redis, policy.etiquette_log.retention_days,
                                                    keys=keys)
        log.start()
        call_events.subscribe(log)
        app[today_key] = today = TodayFigures(log_redis, keys=keys)  # the dashboard's figures
        today.start()
        call_events.subscribe(today)
        app[store_key] = CallStore(redis, log, keys=keys)
        customers, app[callbacks_key], app[rate_limits_key] = intake_services(redis, policy, keys)
        app[customers_key] = customers
        notifier = VoicemailNotifier(settings.voicemail_webhook) if settings.voicemail_webhook else None

        async def voicemail_left(voicemail) -> None:
            # the repeat caller's card says so; the webhook runs off the call's path
            await customers.note(voicemail.caller_number, "voicemail left",
                                 voicemail=voicemail.id, for_whom=voicemail.for_whom,
                                 call_id=voicemail.call_id)
            if notifier is not None:
                notifier(voicemail)

        app[voicemails_key] = Voicemails(redis, keys=keys, on_created=voicemail_left)
        app[complaints_key] = Complaints(redis, keys=keys)  # the API's and the dashboard's
        if accounts_key in app:
            app[staff_sessions_key] = app[sessions_key] = Sessions(
                redis, keys=keys, idle=settings.session_idle, longest=settings.session_longest)
        yield
        if notifier is not None:
            await notifier.close()
        await today.close()
        await log.close()
        await log_redis.aclose()
        await redis.aclose()

    async def ari_ctx(app: web.Application):
        clients: dict[str | None, AriClient] = {}  # one per node this instance serves
        try:
            for node in settings.ari_nodes():
                clients[node.node] = ari = AriClient(
                    node.url, node.user, node.password,
                    request_timeout=settings.ari_request_timeout,
                    pool_size=settings.ari_pool_size)
                await check_ari(ari, node.user, node.node if settings.nodes else None)
        except StartupError:
            for ari in clients.values():
                await ari.close()
            raise
        app[ari_key] = next(iter(clients.values()))  # this instance's own node: the API's reads
        app[ari_nodes_key] = clients
        yield
        for ari in clients.values():
            await ari.close()

    async def calls_ctx(app: web.Application):
        redis = app[redis_key]
        callbacks = app[callbacks_key]
        ownership = CallOwnership(redis, settings.instance(), settings.call_lease, keys=keys)
        watchdog = Watchdog()
        several = len(app[ari_nodes_key]) > 1
        nodes = {node: _node(node, ari, ownership) for node, ari in app[ari_nodes_key].items()}
        calls = (NodeCalls({n: s.inbound for n, s in nodes.items()}, app[store_key])
                 if several else next(iter(nodes.values())).inbound)
        for served in nodes.values():
            served.calls = calls  # a queue's offer goes to the node the caller is on
            for other in nodes.values():  # an operator freed on any node: every line may move
                if other.dispatcher is not None:
                    served.operators.listeners.append(_wakes(other.dispatcher))
        home = next(iter(nodes.values()))
        if home.queue_rule is not None:  # one consumer, whichever node: the figures are shared
            call_events.subscribe(home.queue_rule)
        # a call's state is written only while this process holds its lease (a stale
        # instance's write lands nowhere), and a call taken over is dropped here at once
        app[store_key].fence = ownership
        ownership.on_lost = lambda call_id: [(s.inbound.moved(call_id),
                                              s.callback_calls.moved(call_id))
                                             for s in nodes.values()]
        app[callback_calls_key] = home.callback_calls
        app[dashboard_key] = Dashboard(redis, keys=keys, today=app[today_key],
                                       operators=home.operators, callbacks=callbacks,
                                       complaints=app[complaints_key],
                                       queues=home.queues)
        app[operators_key] = home.operators
        if home.queues is not None:
            app[queues_key] = home.queues
        app[console_key] = ConsoleService(  # the operator's page: reads only
            redis, policy, keys=keys, operators=home.operators, calls=app[store_key],
            customers=app[customers_key], callbacks=callbacks, voicemails=app[voicemails_key],
            directory=app[directory_key])
        app[inbound_key] = calls
        app[events_key] = (NodeEvents({n: s.events for n, s in nodes.items()}) if several
                           else home.events)
        app[watchdog_key] = watchdog
        for node, served in nodes.items():
            name = (lambda what: f"{what}:{node}") if several else (lambda what: what)
            served.reader = watchdog.watch(name("pool" if served.keeper else "ari-events"),
                                           served.events.run)
            if settings.callback_dialer:
                watchdog.watch(name("callback-dialer"), served.dialer.run)
            # callers no instance took left messages in the dialplan: filed once, by any
            watchdog.watch(name("away-messages"),
                           AwayMessages(served.ari, app[voicemails_key], policy).run)
            if served.dispatcher is not None:
                watchdog.watch(name("queue-dispatcher"), served.dispatcher.run)
        watchdog.watch("event-loop-lag", metrics.watch_loop_lag)
        watchdog.watch("call-leases", ownership.run)
        try:
            for node, served in nodes.items():
                await served.started()
        except asyncio.TimeoutError as exc:
            await watchdog.stop()
            stuck = next(s for s in nodes.values() if not s.events.connected.is_set())
            why = f": {stuck.events.last_error}" if stuck.events.last_error else ""
            raise StartupError(f"ARI events WebSocket at {stuck.ari.base_url} not "
                               f"answering{why}") from exc
        except StartupError:
            await watchdog.stop()
            raise
        logger.info("app ready", ari=[s.ari.base_url for s in nodes.values()],
                    app_name=settings.ari_app, operators=list(policy.operators.endpoints))
        for shortfall in policy.shortfalls():
            logger.warning("policy leaves callers without etiquette", why=shortfall)
        yield
        await watchdog.stop()
        for served in nodes.values():
            await served.close()

    def _node(node: str | None, ari: AriClient, ownership: CallOwnership) -> ServedNode:
        """Everything that drives calls on one Asterisk node: its operators' phones, its
        callers' lanes, its queue dispatcher, its callback dialer, its events."""
        redis = app[redis_key]
        served = ServedNode(node, ari)
        staff = policy.operators
        pool = OperatorPool(
            OperatorStore(redis, keys=keys, login_required=staff.login_required),
            PoolSettings(members=staff.endpoints, wrap_up=staff.wrap_up,
                         pause_reasons=staff.pause_reasons),
            call_events.for_rule("operator"))
        operators = served.operators = OperatorService(ari, redis, staff.endpoints, keys=keys,
                                                       pool=pool)
        desk_codes = served.desk_codes = OperatorStasis(ari, operators, _desk_codes(policy),
                                                        app=settings.ari_app)
        rules = policy.hold
        callbacks = app[callbacks_key]
        desk = SupervisorDesk(policy.supervisor, policy.business_hours,
                              operators.for_endpoints(policy.supervisor.endpoints))
        # callers wait in the policy's queues; an operator freed takes the head at once
        queues = served.queues = (QueueDesk(redis, policy, operators, keys=keys, node=node)
                                  if policy.queues else None)
        dispatcher = served.dispatcher = QueueDispatcher(
            queues, redis, owns=ownership.owns,
            deliver=lambda queue, entry, operator: _offer(served.calls, entry.id, operator),
            call_back=lambda entry, staff: dialer.dial_kept(entry.request or "", staff),
        ) if queues is not None else None
        queue_rules = [QueueRule(
            ari, SnapshotStore(redis, "queue", QueueMachine, keys=keys), queues, dispatcher,
            callbacks, app[customers_key], app=settings.ari_app,
            settings=queue_settings(policy, NumberRules.from_policy(policy.callback)),
            ring_timeout=policy.operators.ring_timeout)] if dispatcher is not None else []
        served.queue_rule = queue_rules[0] if queue_rules else None

        # the rules a call can hand its caller to: one line each
        async def complaint_recorded(complaint) -> None:  # on the card the operator sees next
            await app[customers_key].note(
                complaint.caller_number, "complaint recorded", complaint=complaint.id,
                operator=complaint.operator, callback=complaint.callback_id)

        runner = RuleRunner([
            HoldRule(ari, HoldStore(redis, keys=keys), callbacks, app[voicemails_key],
                     app=settings.ari_app, reason_prompts=dict(rules.reasons),
                     settings=_hold_settings(policy)),
            TransferRule(ari, TransferStore(redis, keys=keys), app=settings.ari_app,
                         settings=_transfer_settings(policy)),
            ComplaintRule(ari, ComplaintStore(redis, keys=keys),
                          Complaints(redis, keys=keys, on_created=complaint_recorded), callbacks,
                          app=settings.ari_app, window_minutes=policy.supervisor.callback_window),
            *queue_rules,
            SurveyRule(SurveyStore(redis, keys=keys), app[customers_key]),
            WarningRule(WarningStore(redis, keys=keys), app[customers_key]),
        ], LegActions(ari, rules.moh_class), call_events)
        inbound = served.inbound = InboundStasis(
            ari, app[store_key], runner, call_events,
            CallServices(operators, app[directory_key], desk, app[customers_key],
                         ownership, queues),
            InboundSettings(
                app=settings.ari_app, moh_class=rules.moh_class,
                ring_timeout=policy.operators.ring_timeout,
                connecting_after=policy.operators.connecting_prompt_after,
                connecting_every=policy.operators.connecting_prompt_every,
                recording_notice=policy.recording.enabled,
                codes=_feature_codes(policy), offers=_greeting_offers(policy),
                survey_queues=tuple(q.name for q in policy.queues if q.survey),
                number_region=(policy.callback.allowed_countries[0]
                               if len(policy.callback.allowed_countries) == 1 else None),
                node=node))
        # an attempt's end goes to the dialer, which decides what next
        callback_calls = served.callback_calls = CallbackStasis(
            ari, SnapshotStore(redis, "callback-call", CallbackCallMachine, keys=keys,
                               fence=ownership),
            call_events,
            app=settings.ari_app, dial_template=policy.callback.dial,
            ring_timeout=policy.callback.ring_timeout,
            operator_ring_timeout=policy.operators.ring_timeout,
            company_id=f'"{policy.company}"',
            on_finished=lambda machine, finish: dialer.finished(machine, finish),
            on_adopted=lambda machine: dialer.adopted(machine), node=node,
            ownership=ownership)
        dialer = served.dialer = CallbackDialer(
            redis, app[callbacks_key], operators, app[customers_key], policy,
            supervisors=desk.supervisors, calls=callback_calls, other_nodes=node is not None,
            ready=lambda: served.events.connected.is_set())

        def on_event(event: dict) -> None:  # callback calls have ids of their own
            if desk_codes.on_event(event):  # an operator's desk code: theirs alone
                return
            callback_calls.on_event(event)
            inbound.on_event(event)

        async def connected() -> None:
            metrics.ari_connected()
            await inbound.reconcile()
            await desk_codes.reconcile()
            await callback_calls.reconcile(adopt=settings.ari_app)

        runner.fence(ownership)
        if settings.pool():  # several instances share callers (pool/)
            async def shard_connected(shard: str, takeover: bool) -> None:
                metrics.ari_connected()
                await inbound.reconcile(shard, takeover=takeover, pool=True)
                await desk_codes.reconcile()
                # callback attempts are dialled into the home shard; a dead instance's, into
                # its own: whoever holds the shard now drives them
                await callback_calls.reconcile(adopt=shard)

            inbound.also_allowed = POOL_EVENTS
            served.events = served.keeper = ShardKeeper(
                ari, redis, keys=keys, instance=settings.instance(), home=settings.ari_app,
                apps=settings.pool(), lease=settings.pool_lease, on_event=on_event,
                on_connected=shard_connected, events=call_events.for_rule("pool", POOL_STEPS),
                node=node, on_stopped=callback_calls.let_go)
            callback_calls.holds = served.keeper.holds
        else:
            served.events = EventStream(ari, settings.ari_app, on_event, on_connected=connected,
                                        outage=storage_away)  # Redis away: a warning
        return served

    app.cleanup_ctx.extend([redis_ctx, ari_ctx, calls_ctx])
    return app


class ServedNode:
    """What drives calls on one Asterisk node (app.py `_node`): built once per node this
    instance serves, started and closed with the app."""

    def __init__(self, node: str | None, ari: AriClient) -> None:
        self.node, self.ari = node, ari
        self.keeper: ShardKeeper | None = None
        self.dispatcher: QueueDispatcher | None = None
        self.queues: QueueDesk | None = None
        self.queue_rule: QueueRule | None = None
        self.calls: object = None  # where a queue's offer goes (the node the caller is on)
        self.reader: Watched | None = None
        self.events: EventStream | ShardKeeper
        self.operators: OperatorService
        self.desk_codes: OperatorStasis
        self.inbound: InboundStasis
        self.callback_calls: CallbackStasis
        self.dialer: CallbackDialer

    async def started(self) -> None:
        if self.keeper is not None:  # our app name may be held by a survivor still draining it
            await asyncio.wait_for(self.keeper.first_round.wait(), timeout=15)
            if self.keeper.held():
                await asyncio.wait_for(self.keeper.connected.wait(), timeout=15)
        else:
            assert self.reader is not None
            await asyncio.wait_for(_first_connect(self.events, self.reader), timeout=15)

    async def close(self) -> None:
        if self.keeper is not None:
            await self.keeper.close()
        if self.dispatcher is not None:
            await self.dispatcher.close()
        await self.desk_codes.close()
        await self.callback_calls.close()
        await self.inbound.close()


def _wakes(dispatcher: QueueDispatcher):
    """An operator's change, for a dispatcher: at once, or when their wrap-up ends."""
    return lambda endpoint, after: (dispatcher.kick_later(after, endpoint) if after > 0
                                    else dispatcher.operator_changed(endpoint))


async def _first_connect(events: EventStream, reader: Watched) -> None:
    """Wait for the first connection, surfacing a wrong password at once (the watchdog would
    retry it for ever)."""
    while not events.connected.is_set():
        waiter = asyncio.create_task(events.connected.wait())
        failed = asyncio.create_task(reader.failed.wait())
        await asyncio.wait({waiter, failed}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        failed.cancel()
        if isinstance(reader.last_error, AriUnauthorized):
            raise StartupError(f"ARI events stopped: {reader.last_error}") from reader.last_error
        reader.failed.clear()


async def _offer(inbound: InboundStasis, call_id: str, operator: str) -> bool:
    """An operator reserved for a queued caller, to the caller's call: True when the queue
    still had them (it rings the operator, or lets them go itself)."""
    try:
        await inbound.request(call_id, ToRule("queue", OperatorOffered(time.time(), operator)))
    except (LookupError, InvalidTransition):
        return False  # the caller left the queue meanwhile
    return True


def _hold_settings(policy: Policy) -> HoldSettings:
    rules = policy.hold
    return HoldSettings(check_in_interval=rules.check_in_interval,
                        fallback_after=rules.fallback_after,
                        choice_timeout=rules.fallback_choice_timeout,
                        menu_repeat_after=rules.menu_repeat_after,
                        fallback_default=rules.fallback_default,
                        max_holds_per_call=rules.max_holds_per_call,
                        numbers=NumberRules.from_policy(policy.callback))


def _transfer_settings(policy: Policy) -> TransferSettings:
    moves, codes = policy.transfer, policy.feature_codes
    return TransferSettings(ring_timeout=moves.ring_timeout, choice_timeout=moves.choice_timeout,
                            accept_timeout=moves.accept_timeout,
                            menu_repeat_after=moves.menu_repeat_after,
                            check_in_interval=policy.hold.check_in_interval,
                            way_out_after=policy.hold.fallback_after,
                            recording_notice=policy.recording.enabled,
                            complete_code=codes.transfer, cancel_code=codes.resume)


def _greeting_offers(policy: Policy) -> tuple[tuple[str, ...], ...]:
    """The keys said after the greeting, with how each is said: a queue by its department's
    name; a language in that language (its prompt from that language's folder)."""
    offers = []
    names = {e.id: e.name_prompt or f"directory-{e.id}" for e in policy.directory}
    for digit, queue in sorted(policy.greeting.queue_keys.items()):
        department = policy.queue(queue).department or ""
        offers.append((digit, "queue", queue, "sound:etiquette/greeting-key-queue",
                       f"sound:etiquette/{names[department]}",
                       "sound:etiquette/greeting-key-press", f"digits:{digit}"))
    if offers:  # a menu of departments: 0 is a person, as on every phone menu
        offers.append(("0", "operator", "any", "sound:etiquette/press-0-for-operator"))
    for digit, language in sorted(policy.greeting.language_keys.items()):
        # the digit in that language too: `digits:` would say it in the caller's
        offers.append((digit, "language", language, f"sound:{language}/etiquette/language-offer",
                       f"sound:{language}/digits/{digit}"))
    return tuple(offers)


def _desk_codes(policy: Policy) -> DeskCodes:
    codes = policy.feature_codes
    return DeskCodes(login=codes.login, logout=codes.logout, pause=codes.pause,
                     unpause=codes.unpause, reasons=policy.operators.pause_reasons)


def _feature_codes(policy: Policy) -> FeatureCodes:
    codes = policy.feature_codes
    return FeatureCodes(hold=codes.hold, resume=codes.resume,
                        reasons=tuple(policy.hold.reasons), transfer=codes.transfer,
                        supervisor=codes.supervisor, warn=codes.warn, transfer_mode=policy.transfer.mode,
                        caller_supervisor=policy.supervisor.caller_key_allowed)
