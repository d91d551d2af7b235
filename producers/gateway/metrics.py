"""The gateway's metrics: requests by route and status, publish latency, served at /metrics."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter, Histogram

from producers.gateway.problems import Handler

#: Route label of requests that matched no route: one value, so scanners cannot blow up the
#: label set with made-up paths.
UNMATCHED_ROUTE = "unmatched"


class GatewayMetrics:
    """Registered on the registry the caller owns (never at import)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "liveops_gateway_requests_total",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "liveops_gateway_request_seconds",
            "Time to answer a request, by route template.",
            ["route"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "liveops_gateway_publish_seconds",
            "Time the gateway waited for the broker to acknowledge an event.",
            ["topic"],
            registry=registry,
        )
        self.duplicates = Counter(
            "liveops_gateway_duplicate_requests_total",
            "Retried requests answered from the idempotency store without publishing.",
            registry=registry,
        )

    def middleware(self) -> Middleware:
        @web.middleware
        async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                status = exc.status
                raise
            else:
                status = response.status
                return response
            finally:
                route = _route_label(request)
                method = request.method if request.method in _METHODS else "OTHER"
                self.requests.labels(method, route, str(status)).inc()
                self.request_seconds.labels(route).observe(time.perf_counter() - started)

        return count_requests


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical
