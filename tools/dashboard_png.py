"""Draw the whole Grafana dashboard from Prometheus into one PNG, panel by panel.

    python -m tools.dashboard_png --prometheus http://127.0.0.1:9090 --since 15m --out dashboard.png

Every panel of monitoring/dashboard.json at its own place in the 24-column grid
(``gridPos``), every target's query with the template variables filled in (the same
substitution ``make report`` uses), one line per series with Grafana's legend
(``{{label}}`` filled from the series' labels), the panel's unit on the axis. It is not a
Grafana screenshot: it shows what the dashboard's queries return, drawn with matplotlib,
so a machine without Grafana can still see the dashboard. The picture in docs/monitoring.md
comes from the live monitoring test (tests/monitoring/test_live.py).

The PNG's ``Description`` text chunk holds, per panel, the number of series drawn (JSON).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tools.report import DASHBOARD, ROOT, dashboard_queries, query_range_all, window, window_arguments

GRID_COLUMNS = 24
_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_SCALE = {"percentunit": (100.0, "%"), "bytes": (1 / 2**20, "MiB"), "s": (1000.0, "ms")}


def no_data_note(exprs: list[str]) -> str:
    """What an empty panel says: a cluster-only source by name, or just that this run had none."""
    sources = [name for prefix, name in (("kube_", "kube-state-metrics"), ("keda_", "KEDA"))
               if any(prefix in expr for expr in exprs)]
    if sources:
        return f"no data here: in the cluster,\n{' and '.join(sources)} feed{'s' if len(sources) == 1 else ''} it"
    return "no data in this run"


def panels(namespace: str, queue: str, dead_letter: str, rate_interval: str) -> list[dict]:
    """The dashboard's panels (title, grid place, unit) with their targets as
    ``report.dashboard_queries`` fills them in: ``(legend, PromQL)``."""
    queries = dashboard_queries(namespace, queue, dead_letter, rate_interval)
    variables = {"$namespace": namespace, "$queue": queue, "$dead_letter": dead_letter}
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        targets = []
        for title, legend, expr in queries:
            if title == panel["title"]:
                for var, value in variables.items():
                    legend = legend.replace(var, value)
                targets.append((legend, expr))
        field_config = panel.get("fieldConfig", {})
        right = {o["matcher"]["options"] for o in field_config.get("overrides", [])
                 if o["matcher"]["id"] == "byName"
                 and {"id": "custom.axisPlacement", "value": "right"} in o["properties"]}
        out.append({"title": panel["title"], "grid": panel["gridPos"], "targets": targets, "right_axis": right,
                    "unit": field_config.get("defaults", {}).get("unit", "short")})
    return out


def legend_for(template: str, labels: dict) -> str:
    return _LABEL.sub(lambda m: labels.get(m.group(1), ""), template) or "series"


def draw(prometheus: str, start: float, end: float, step: int, out: Path, *, namespace: str, queue: str,
         rate_interval: str) -> dict[str, int]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec
    from matplotlib.ticker import MaxNLocator

    layout = panels(namespace, queue, f"{queue}.dead_letter", rate_interval)
    rows = max(p["grid"]["y"] + p["grid"]["h"] for p in layout)
    fig = plt.figure(figsize=(16, rows * 0.42))
    grid = GridSpec(rows, GRID_COLUMNS, figure=fig, hspace=2.2, wspace=2.0, top=0.95, bottom=0.03)
    window = (datetime.fromtimestamp(start, tz=UTC), datetime.fromtimestamp(end, tz=UTC))
    drawn: dict[str, int] = {}
    for panel in layout:
        g = panel["grid"]
        ax = fig.add_subplot(grid[g["y"]:g["y"] + g["h"] - 1, g["x"]:g["x"] + g["w"]])
        scale, unit = _SCALE.get(panel["unit"], (1.0, {"ops": "/s", "reqps": "req/s"}.get(panel["unit"], "")))
        count, lines, twin = 0, [], None
        for legend, expr in panel["targets"]:
            for labels, points in query_range_all(prometheus, expr, start, end, step):
                times = mdates.date2num([datetime.fromtimestamp(t, tz=UTC) for t, _ in points])
                name = legend_for(legend, labels)
                if name in panel["right_axis"]:  # Grafana's override: own axis on the right, dashed
                    twin = twin or ax.twinx()
                    lines += twin.plot(times, [v for _, v in points], label=name, linewidth=1.2, linestyle="--",
                                       color=f"C{count}")
                    twin.tick_params(labelsize=7)
                    twin.set_ylim(bottom=0, top=max([1.0] + [v for _, v in points]) * 1.15)
                    twin.yaxis.set_major_locator(MaxNLocator(4, integer=True))
                else:
                    lines += ax.plot(times, [v * scale for _, v in points], label=name, linewidth=1.2,
                                     color=f"C{count}")
                count += 1
        drawn[panel["title"]] = count
        ax.set_title(panel["title"], fontsize=10, loc="left")
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
        ax.set_xlim(mdates.date2num(window[0]), mdates.date2num(window[1]))
        ax.grid(alpha=0.3)
        if count:
            ax.legend(lines, [str(line.get_label()) for line in lines], fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, no_data_note([expr for _, expr in panel["targets"]]),
                    transform=ax.transAxes, ha="center", va="center", color="grey", fontsize=8)
    fig.suptitle(f"redis-keda-platform dashboard: the panels' queries against Prometheus "
                 f"({window[0]:%Y-%m-%d %H:%M:%S} to {window[1]:%H:%M:%S} UTC)", fontsize=12)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, metadata={"Title": "redis-keda-platform dashboard", "Description": json.dumps(drawn)})
    plt.close(fig)
    return drawn


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.dashboard_png", description=__doc__.split("\n\n")[0])
    window_arguments(parser)
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval stands for (default 1m)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "dashboard.png", help="PNG to write")
    args = parser.parse_args(argv)
    start, end, step = window(args, parser)
    drawn = draw(args.prometheus, start, end, step, args.out, namespace=args.namespace, queue=args.queue,
                 rate_interval=args.rate_interval)
    print(f"dashboard_png: {args.out} ({sum(1 for n in drawn.values() if n)} of {len(drawn)} panels with data)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
