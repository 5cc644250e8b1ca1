"""Prometheus metrics: counters and histograms kept by every process, gauges read from the database.

With several worker processes (``python -m bot serve --workers N``) the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` before the workers start, so prometheus-client keeps each process's
values in memory-mapped files there and ``/metrics``, whichever worker answers it, adds them all
up (:class:`prometheus_client.multiprocess.MultiProcessCollector`). With one process the default
registry is used.

What the database knows (tickets by state, the outbox backlog, open handoff requests) is read when
``/metrics`` is scraped, at most once every few seconds per process: a gauge kept in every process
could not be added up across processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REQUESTS = Counter("bot_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram(
    "bot_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INTENTS = Counter("bot_intents_total", "Residents' messages by the intent they were understood as", ["intent"])
HANDOFFS = Counter("bot_handoffs_total", "Messages answered by the 转人工 (handoff) flow")
WECHAT_API_ERRORS = Counter(
    "bot_wechat_api_errors_total", "Calls to WeChat's API that failed", ["kind"]
)  # kind: unavailable (network, timeout, 5xx, busy) or errcode
RATE_LIMITED = Counter("bot_rate_limited_total", "Requests held back by a rate limit", ["limit"])

SCRAPE_CACHE_SECONDS = 5.0


# Children by label values, looked up once: ``labels()`` builds and checks its key and takes a lock
# on every call, three times per message. The values are bounded (routes' patterns, statuses,
# intents), and a cache past ``MAX_CHILDREN`` is simply dropped.
_children: dict[tuple[Any, ...], Any] = {}
MAX_CHILDREN = 4096


def _child(metric: Any, *values: str) -> Any:
    key = (id(metric), *values)
    child = _children.get(key)
    if child is None:
        if len(_children) >= MAX_CHILDREN:
            _children.clear()
        child = _children[key] = metric.labels(*values)
    return child


def count_message(intent: str | None, handler: str | None) -> None:
    """One resident's message handled: its intent and whether it asked for a person."""
    _child(INTENTS, intent or "none").inc()
    if handler and handler.startswith("handoff"):
        HANDOFFS.inc()


def route_of(request: web.Request) -> str:
    """The route's pattern (``/api/v1/tickets/{id}``), never the raw path: bounded label values."""
    route = request.match_info.route
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def measure(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = route_of(request)
        _child(REQUESTS, route, request.method, str(status)).inc()
        _child(LATENCY, route).observe(time.perf_counter() - start)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


class DatabaseGauges:
    """Tickets by state, outbox rows by state and handoff requests by state, cached briefly."""

    def __init__(self) -> None:
        self.cached: list[Metric] = []
        self.at = 0.0

    async def read(self, db: Any) -> list[Metric]:
        if self.cached and time.monotonic() - self.at < SCRAPE_CACHE_SECONDS:
            return self.cached
        from sqlalchemy import func, select

        from bot.storage.models import HandoffRequest, OutboxMessage, Ticket

        metrics: list[Metric] = []
        async with db.session() as session:
            for name, doc, model in (
                ("bot_tickets", "Tickets by state", Ticket),
                ("bot_outbox_messages", "Outbox (customer-service messages) rows by state; pending is the backlog", OutboxMessage),
                ("bot_handoff_requests", "转人工 requests by state", HandoffRequest),
            ):
                family = GaugeMetricFamily(name, doc, labels=["status"])
                rows = await session.execute(select(model.status, func.count()).group_by(model.status))
                for status, count in rows:
                    family.add_metric([str(status)], float(count))
                metrics.append(family)
        self.cached, self.at = metrics, time.monotonic()
        return metrics


async def metrics_page(request: web.Request) -> web.Response:
    from bot.appkeys import RUNTIME

    gauges: DatabaseGauges = request.app[GAUGES]
    body = b""
    try:
        body += generate_latest(_registry())
        fixed = CollectorRegistry(auto_describe=False)
        fixed.register(_Fixed(await gauges.read(request.app[RUNTIME].db)))
        body += generate_latest(fixed)
    except Exception as exc:  # the database down: what the process knows is still shown
        body += f"# database gauges unavailable: {type(exc).__name__}\n".encode()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


GAUGES: web.AppKey[DatabaseGauges] = web.AppKey("metrics_gauges", DatabaseGauges)


def setup(app: web.Application) -> None:
    app[GAUGES] = DatabaseGauges()
    app.middlewares.append(measure)
    app.router.add_get("/metrics", metrics_page)
