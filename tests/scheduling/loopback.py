"""A loopback HTTP server replaying the three providers' documented reply shapes.

Replies are written from the public API docs (UK Carbon Intensity API, Electricity Maps v3,
WattTime v3), generated from one known intensity function so that tests can compute what a
trial should be charged. ``server.now`` is the provider's clock: half-hours that ended before
it carry an ``actual``; later ones only a ``forecast`` (= actual + ``FORECAST_BIAS``).
``server.fail(prefix, *replies)`` queues error replies (status code, ``"hang"`` for a timeout,
``b"..."`` for a raw body) served before the normal ones, to paths starting with ``prefix``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SLOT = 1800
FORECAST_BIAS = 7.0
TOKEN = "em-TOKEN-s3cr3t-1"
WT_USER, WT_PASSWORD, WT_BEARER = "ann", "wt-PASSWORD-s3cr3t-2", "wt-BEARER-s3cr3t-3"


def actual_at(t_s: float) -> float:
    """The grid's intensity in the half-hour containing ``t_s``: a daily shape, per slot."""
    slot = int(t_s // SLOT)
    return 100.0 + 80.0 * ((slot * 7) % 13) / 12.0


def forecast_at(t_s: float) -> float:
    return actual_at(t_s) + FORECAST_BIAS


def _iso_min(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%MZ")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse(s: str) -> float:
    s = s.replace("Z", "+00:00")
    when = datetime.fromisoformat(s)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


class Loopback:
    def __init__(self) -> None:
        self.now: datetime | None = None  # None: the real time
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.queued: list[tuple[str, Any]] = []
        self.forecast_fn: Callable[[float], float] = forecast_at
        self.hang_s = 1.0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *args: None  # a client that timed out and left
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, prefix: str, *replies: Any) -> None:
        with self._lock:
            self.queued += [(prefix, r) for r in replies]

    def now_s(self) -> float:
        return (self.now or datetime.now(UTC)).timestamp()

    def paths(self, needle: str = "") -> list[str]:
        return [p for p, _ in self.requests if needle in p]

    # -- serving --------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/carbon-intensity/"):  # Electricity Maps' base URL ends in /v3
            h.path = "/v3" + h.path
        self.requests.append((h.path, dict(h.headers.items())))
        path = urlsplit(h.path).path
        with self._lock:
            hit = next((i for i, (p, _) in enumerate(self.queued) if path.startswith(p)), None)
            reply = self.queued.pop(hit)[1] if hit is not None else None
        if reply == "hang":
            time.sleep(self.hang_s)
            return self._send(h, 200, b"{}")
        if isinstance(reply, bytes):
            return self._send(h, 200, reply)
        if isinstance(reply, dict):
            return self._send(h, 200, json.dumps(reply).encode())
        if isinstance(reply, int):
            extra = {"Retry-After": "0"} if reply == 429 else {}
            return self._send(h, reply, b'{"error": "test"}', extra)
        try:
            status, body = self._route(h)
        except (KeyError, ValueError) as exc:
            status, body = 400, {"error": str(exc)}
        self._send(h, status, json.dumps(body).encode())

    def _send(
        self, h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None
    ) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _slots(self, a: float, b: float) -> list[float]:
        first = (a // SLOT) * SLOT
        return [t for t in range(int(first), int(b), SLOT)]

    def _uk_item(self, t: float, *, regional: bool = False) -> dict[str, Any]:
        final = t + SLOT <= self.now_s()
        intensity: dict[str, Any] = {"forecast": round(self.forecast_fn(t), 3), "index": "moderate"}
        if not regional:
            intensity["actual"] = actual_at(t) if final else None
        item: dict[str, Any] = {
            "from": _iso_min(t),
            "to": _iso_min(t + SLOT),
            "intensity": intensity,
        }
        if regional:
            item["generationmix"] = [{"fuel": "gas", "perc": 40.1}, {"fuel": "wind", "perc": 59.9}]
        return item

    def _route(self, h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        parts = urlsplit(h.path)
        path, q = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        now = self.now_s()
        # -- UK Carbon Intensity API ------------------------------------------------------
        if path == "/intensity":
            return 200, {"data": [self._uk_item((now // SLOT) * SLOT)]}
        if m := re.fullmatch(r"/intensity/([^/]+)/fw48h", path):
            a = _parse(m[1])
            return 200, {"data": [self._uk_item(t) for t in self._slots(a, a + 48 * 3600)]}
        if m := re.fullmatch(r"/intensity/([^/]+)/([^/]+)", path):
            a, b = _parse(m[1]), _parse(m[2])
            return 200, {
                "data": [self._uk_item(t) for t in self._slots(a, b) if t < now + 48 * 3600]
            }
        if m := re.fullmatch(
            r"/regional/intensity/([^/]+)/(fw48h|[^/]+)/(regionid|postcode)/(\w+)", path
        ):
            a = _parse(m[1])
            b = a + 48 * 3600 if m[2] == "fw48h" else _parse(m[2])
            data = [self._uk_item(t, regional=True) for t in self._slots(a, b)]
            return 200, {
                "data": {
                    "regionid": 13,
                    "dnoregion": "UKPN London",
                    "shortname": "London",
                    "data": data,
                }
            }
        if re.fullmatch(r"/regional/(regionid|postcode)/\w+", path):
            item = self._uk_item((now // SLOT) * SLOT, regional=True)
            return 200, {"data": [{"regionid": 13, "shortname": "London", "data": [item]}]}
        # -- Electricity Maps v3 ----------------------------------------------------------
        if path.startswith("/v3/carbon-intensity/"):
            if h.headers.get("auth-token") != TOKEN:
                return 401, {"status": "error", "message": "Unauthorized"}
            zone = q["zone"]
            offset = 50.0 if zone == "FR" else 0.0  # a second zone, greener or dirtier

            def em(t: float, fc: bool = False) -> dict[str, Any]:
                v = (self.forecast_fn(t) if fc else actual_at(t)) - offset
                return {
                    "zone": zone,
                    "carbonIntensity": v,
                    "datetime": _iso(t),
                    "updatedAt": _iso(now),
                    "emissionFactorType": q.get("emissionFactorType", "lifecycle"),
                    "isEstimated": False,
                    "estimationMethod": None,
                }

            hour = (now // 3600) * 3600
            if path.endswith("/latest"):
                return 200, em(hour - 3600)
            if path.endswith("/history"):
                return 200, {
                    "zone": zone,
                    "history": [em(hour - k * 3600) for k in range(24, 0, -1)],
                }
            if path.endswith("/past-range"):
                a, b = _parse(q["start"]), _parse(q["end"])
                return 200, {
                    "zone": zone,
                    "data": [em(t) for t in range(int(a // 3600 * 3600), int(b), 3600)],
                }
            if path.endswith("/forecast"):
                return 200, {
                    "zone": zone,
                    "forecast": [em(hour + k * 3600, True) for k in range(0, 24)],
                    "updatedAt": _iso(hour),
                }
        # -- WattTime v3 ------------------------------------------------------------------
        if path == "/login":
            want = "Basic " + base64.b64encode(f"{WT_USER}:{WT_PASSWORD}".encode()).decode()
            if h.headers.get("Authorization") != want:
                return 403, {"error": "bad credentials"}
            return 200, {"token": WT_BEARER}
        if path.startswith("/v3/"):
            if h.headers.get("Authorization") != f"Bearer {WT_BEARER}":
                return 401, {"error": "token expired"}
            per_mwh = 1 / 0.45359237  # replies in lbs/MWh
            five = (now // 300) * 300
            meta = {
                "region": q["region"],
                "signal_type": q["signal_type"],
                "units": "lbs_co2_per_mwh",
                "data_point_period_seconds": 300,
                "warnings": [],
            }
            if path == "/v3/historical":
                a, b = _parse(q["start"]), min(_parse(q["end"]), five)
                data = [
                    {"point_time": _iso(t), "value": actual_at(t) * per_mwh, "version": "3.2"}
                    for t in range(int(a // 300 * 300), int(b), 300)
                ]
                return 200, {"data": data, "meta": meta}
            if path == "/v3/forecast":
                data = [
                    {
                        "point_time": _iso(five + k * 300),
                        "value": self.forecast_fn(five + k * 300) * per_mwh,
                    }
                    for k in range(0, 24 * 12)
                ]
                return 200, {
                    "data": data,
                    "meta": {
                        **meta,
                        "generated_at": _iso(five),
                        "generated_at_period_seconds": 300,
                        "model": {"date": "2024-01-01"},
                    },
                }
        return 404, {"error": f"no route {path}"}


def expected_uk_mean(a: float, b: float, asked_at: float) -> float:
    """What the UK API's national replies charge work over [a, b) when asked at ``asked_at``."""
    total = 0.0
    t = a
    while t < b:
        end = min(b, (t // SLOT + 1) * SLOT)
        slot_end = (t // SLOT + 1) * SLOT
        v = actual_at(t) if slot_end <= asked_at else round(forecast_at(t), 3)  # as served
        total += v * (end - t)
        t = end
    return total / (b - a)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
