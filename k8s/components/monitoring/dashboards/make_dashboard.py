#!/usr/bin/env python3
"""Writes play-from-chat.json, the Grafana dashboard of both services.

    python3 k8s/components/monitoring/dashboards/make_dashboard.py          # rewrite
    python3 k8s/components/monitoring/dashboards/make_dashboard.py --check  # drift check

Edit the panels here, not the JSON: scripts/deploy_check.sh fails when the JSON is
not what this script writes. Rows: the pairing funnel (connects -> invites ->
accepts -> multiplayer sessions, solo sessions by reason), then health (IM latency
and breaker, store errors, lock contention, expiry backlog, open streams, 5xx
ratio, request rate and latency).
"""

import json
import pathlib
import sys

OUT = pathlib.Path(__file__).with_name("play-from-chat.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
NS = 'namespace="$namespace"'
RI = "$__rate_interval"

_panels = []
_next_id = [1]
_y = [0]


def _id():
    value = _next_id[0]
    _next_id[0] += 1
    return value


def row(title):
    _panels.append(
        {
            "type": "row",
            "id": _id(),
            "title": title,
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y[0]},
            "panels": [],
        }
    )
    _y[0] += 1


def panel(title, targets, *, x, w, h=8, kind="timeseries", unit="short", description="", newline=False, options=None, field_defaults=None):
    defaults = {"unit": unit}
    defaults.update(field_defaults or {})
    p = {
        "type": kind,
        "id": _id(),
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": _y[0]},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    _panels.append(p)
    if newline:
        _y[0] += h


def rate(metric, selector=""):
    sel = f"{NS}, {selector}" if selector else NS
    return f"rate({metric}{{{sel}}}[{RI}])"


def build():
    row("Pairing funnel")
    funnel = [
        (f"sum(increase(game_connects_total{{{NS}}}[$__range]))", "connects"),
        (f'sum(increase(game_prompts_total{{{NS}, kind="invite"}}[$__range]))', "invites"),
        (f'sum(increase(game_answers_total{{{NS}, decision="accept"}}[$__range]))', "accepts"),
        (f'sum(increase(game_sessions_started_total{{{NS}, kind="multiplayer"}}[$__range]))', "multiplayer sessions"),
    ]
    panel(
        "Funnel over the time range",
        funnel,
        x=0,
        w=8,
        kind="bargauge",
        description="Connects, invite prompts, accepted prompts and multiplayer sessions started, over the selected range.",
        options={"orientation": "horizontal", "displayMode": "gradient", "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        field_defaults={"decimals": 0},
    )
    panel(
        "Funnel rates",
        [
            (f"sum({rate('game_connects_total')})", "connects/s"),
            (f"sum by (kind) ({rate('game_prompts_total')})", "{{kind}} prompts/s"),
            (f"sum by (decision) ({rate('game_answers_total')})", "{{decision}}/s"),
            ("sum(" + rate('game_sessions_started_total', 'kind="multiplayer"') + ")", "multiplayer sessions/s"),
        ],
        x=8,
        w=8,
        unit="reqps",
    )
    panel(
        "Solo sessions by reason",
        [("sum by (reason) (" + rate('game_sessions_started_total', 'kind="solo"') + ")", "{{reason}}")],
        x=16,
        w=8,
        unit="reqps",
        description="im_unavailable is the degraded case (IM down, slow or breaker open).",
        field_defaults={"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 30}},
        newline=True,
    )
    panel(
        "Accept ratio",
        [
            (
                "sum(" + rate('game_answers_total', 'decision="accept"') + ") / sum(" + rate('game_prompts_total') + ")",
                "accepted / prompts",
            )
        ],
        x=0,
        w=8,
        unit="percentunit",
    )
    panel(
        "Invite to join",
        [
            (f"histogram_quantile(0.5, sum by (le) ({rate('game_invite_to_join_seconds_bucket')}))", "p50"),
            (f"histogram_quantile(0.99, sum by (le) ({rate('game_invite_to_join_seconds_bucket')}))", "p99"),
        ],
        x=8,
        w=8,
        unit="s",
        description="From the invitation to the invitee joining the lobby.",
    )
    panel(
        "Sessions ended and expiries",
        [
            (f"sum by (reason) ({rate('game_sessions_ended_total')})", "ended: {{reason}}"),
            (f"sum by (kind) ({rate('game_expiries_total')})", "expired: {{kind}}"),
        ],
        x=16,
        w=8,
        unit="reqps",
        newline=True,
    )

    row("Health")
    panel(
        "IM calls: latency",
        [
            (f"histogram_quantile(0.99, sum by (le) ({rate('game_im_request_duration_seconds_bucket')}))", "p99"),
            (f"histogram_quantile(0.5, sum by (le) ({rate('game_im_request_duration_seconds_bucket')}))", "p50"),
        ],
        x=0,
        w=8,
        unit="s",
        description="The game service's calls to the IM service; above IM_TIMEOUT_MS a connect goes solo.",
    )
    panel(
        "IM calls: outcome and breaker",
        [
            (f"sum by (outcome) ({rate('game_im_requests_total')})", "{{outcome}}"),
            (f"max(game_im_breaker_open{{{NS}}})", "breaker open (any replica)"),
        ],
        x=8,
        w=8,
        unit="short",
    )
    panel(
        "Store errors and lock contention",
        [
            (f"sum by (job) ({rate('game_store_errors_total')})", "game store errors/s"),
            (f"sum by (job) ({rate('im_store_errors_total')})", "im store errors/s"),
            (f"sum({rate('game_lock_contention_total')})", "lock contention/s"),
        ],
        x=16,
        w=8,
        unit="reqps",
        newline=True,
    )
    panel(
        "Expiry backlog",
        [(f"max by (pod) (game_expiry_backlog{{{NS}}})", "{{pod}}")],
        x=0,
        w=8,
        description="Due expiry jobs not yet run, as each replica sees them: near 0 when healthy.",
    )
    panel(
        "Open event streams",
        [
            (f"sum by (pod) (game_event_streams_open{{{NS}}})", "{{pod}}"),
            (f"sum(game_event_streams_open{{{NS}}})", "total"),
        ],
        x=8,
        w=8,
    )
    panel(
        "5xx ratio",
        [
            (
                "sum(" + rate('game_http_requests_total', 'status=~"5.."') + ") / sum(" + rate('game_http_requests_total') + ")",
                "game-service",
            ),
            (
                "sum(" + rate('im_http_requests_total', 'status=~"5.."') + ") / sum(" + rate('im_http_requests_total') + ")",
                "im-service",
            ),
        ],
        x=16,
        w=8,
        unit="percentunit",
        newline=True,
    )
    panel(
        "Request rate by endpoint",
        [
            (f"sum by (endpoint) ({rate('game_http_requests_total')})", "game {{endpoint}}"),
            (f"sum by (endpoint) ({rate('im_http_requests_total')})", "im {{endpoint}}"),
        ],
        x=0,
        w=12,
        unit="reqps",
    )
    panel(
        "Request latency p99 (event streams excluded)",
        [
            (
                "histogram_quantile(0.99, sum by (le) ("
                + rate("game_http_requests_duration_seconds_bucket", 'endpoint!="/v1/events"')
                + "))",
                "game-service p99",
            ),
            (
                "histogram_quantile(0.99, sum by (le) (" + rate("im_http_requests_duration_seconds_bucket") + "))",
                "im-service p99",
            ),
            (
                "histogram_quantile(0.5, sum by (le) ("
                + rate("game_http_requests_duration_seconds_bucket", 'endpoint!="/v1/events"')
                + "))",
                "game-service p50",
            ),
        ],
        x=12,
        w=12,
        unit="s",
        newline=True,
    )

    return {
        "title": "Play from chat",
        "uid": "play-from-chat",
        "description": "Pairing funnel and health of game-service and im-service (k8s/components/monitoring).",
        "tags": ["play-from-chat"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(game_connects_total, namespace)", "refId": "namespace"},
                    "definition": "label_values(game_connects_total, namespace)",
                    "refresh": 2,
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "sort": 1,
                },
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": _panels,
    }


def render():
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv[1:]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is not what {pathlib.Path(__file__).name} writes: run it", file=sys.stderr)
            sys.exit(1)
    else:
        OUT.write_text(text)
