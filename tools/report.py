"""Plot a run from Prometheus: queue length, worker replicas and tasks/s (``make report``).

    python -m tools.report --prometheus http://127.0.0.1:9090 --since 15m --out report.png
    python -m tools.report --prometheus URL --start 2026-12-02T10:00:00Z --end 2026-12-02T10:20:00Z

The three series are the dashboard's own queries (monitoring/dashboard.json, panels
"Queue length vs worker replicas" and "Tasks/s"), with its template variables filled in:
what the PNG shows is what Grafana shows. Worker replicas are kube-state-metrics' count
when Prometheus has it (in the cluster), else the worker pods Prometheus scrapes.

The PNG carries, in its ``Description`` text chunk, the number of points and the maximum
of each series (JSON), so a test can check what was drawn. Exit 1 if a series is empty.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "monitoring" / "dashboard.json"
QUEUE_PANEL = "Queue length vs worker replicas (the KEDA story)"
TASKS_PANEL = "Tasks/s"
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(text: str) -> int:
    """'90s', '15m', '2h' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 30s, 15m or 2h: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def timestamp(text: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC when no zone is given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a unix time or ISO 8601 time: {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def dashboard_queries(namespace: str, queue: str, dead_letter: str, rate_interval: str) -> list[tuple[str, str, str]]:
    """Every query of the dashboard as ``(panel title, legend, PromQL)``, variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = {"$__rate_interval": rate_interval, "$namespace": namespace, "$queue": queue, "$dead_letter": dead_letter}
    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in values.items():  # $__rate_interval first: it contains no other variable
                expr = expr.replace(var, value)
            if "$" in expr:
                raise ValueError(f"{panel['title']}: unknown variable in {expr!r}")
            out.append((panel["title"], target["legendFormat"], expr))
    return out


@dataclass(frozen=True)
class Series:
    name: str
    expr: str
    points: list[tuple[float, float]]


def report_queries(namespace: str, queue: str, rate_interval: str) -> dict[str, str]:
    """The three series of the report, from the dashboard's panels."""
    by_legend = {(title, legend): expr for title, legend, expr in
                 dashboard_queries(namespace, queue, f"{queue}.dead_letter", rate_interval)}
    replicas_ksm = by_legend[(QUEUE_PANEL, "worker replicas (kube-state-metrics)")]
    replicas_scraped = by_legend[(QUEUE_PANEL, "worker pods scraped")]
    return {
        "queue length": by_legend[(QUEUE_PANEL, "queue length ($queue)")],
        "worker replicas": f"({replicas_ksm}) or ({replicas_scraped})",
        "tasks/s succeeded": by_legend[(TASKS_PANEL, "succeeded")],
    }


def query_range_all(prometheus: str, expr: str, start: float, end: float, step: int) -> list[tuple[dict, list]]:
    """Every series of a range query: ``(labels, [(t, v), ...])``; exits naming the problem."""
    params = urllib.parse.urlencode({"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)})
    url = f"{prometheus.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise SystemExit(f"report: Prometheus refused {expr!r}: {err.read().decode(errors='replace')[:300]}") from None
    except OSError as err:
        raise SystemExit(f"report: cannot reach Prometheus at {prometheus}: {err}") from None
    return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in data["data"]["result"]]


def query_range(prometheus: str, expr: str, start: float, end: float, step: int) -> list[tuple[float, float]]:
    """The first series of a range query (the report's queries each return one)."""
    result = query_range_all(prometheus, expr, start, end, step)
    return result[0][1] if result else []


def plot(series: Sequence[Series], out: Path, start: float, end: float) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    summary = {s.name: {"points": len(s.points), "max": max((v for _, v in s.points), default=None)} for s in series}
    fig, axes = plt.subplots(len(series), 1, figsize=(10, 7), sharex=True)
    colors = ("tab:blue", "tab:orange", "tab:green")
    for ax, s, color in zip(axes, series, colors, strict=True):
        times = [datetime.fromtimestamp(t, tz=UTC) for t, _ in s.points]
        values = [v for _, v in s.points]
        if s.name == "worker replicas":
            ax.step(times, values, where="post", color=color)
        else:
            ax.plot(times, values, color=color)
            ax.fill_between(times, values, alpha=0.15, color=color)
        ax.set_ylabel(s.name)
        ax.set_ylim(bottom=0)
        if s.name != "tasks/s succeeded":  # counts: whole numbers on the axis
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if not s.points:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
    window = f"{datetime.fromtimestamp(start, tz=UTC):%Y-%m-%d %H:%M:%S} to {datetime.fromtimestamp(end, tz=UTC):%H:%M:%S} UTC"
    axes[0].set_title(f"redis-keda-platform: queue length, worker replicas and tasks/s ({window})")
    axes[-1].set_xlabel("time (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Title": "redis-keda-platform run report", "Description": json.dumps(summary)})
    plt.close(fig)
    return summary


def window_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments ``make report`` and ``tools.dashboard_png`` share: where, when, what."""
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--since", type=seconds, default=None, help="window ending now (e.g. 15m); default 15m")
    parser.add_argument("--start", type=timestamp, default=None, help="window start (unix or ISO 8601)")
    parser.add_argument("--end", type=timestamp, default=None, help="window end (unix or ISO 8601); default now")
    parser.add_argument("--step", type=seconds, default=None, help="resolution (default: window / 300, at least 1s)")
    parser.add_argument("--namespace", default="platform", help="app namespace")
    parser.add_argument("--queue", default="celery", help="Celery queue (the Redis list KEDA watches)")


def window(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[float, float, int]:
    """(start, end, step) from ``window_arguments``; a bad combination is a usage error."""
    if args.start is not None and args.since is not None:
        parser.error("give --since or --start, not both")
    end = args.end if args.end is not None else time.time()
    start = args.start if args.start is not None else end - (args.since or 900)
    if start >= end:
        parser.error("the window's start must be before its end")
    return start, end, args.step or max(1, int((end - start) / 300))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__.split("\n\n")[0])
    window_arguments(parser)
    parser.add_argument("--rate-window", default="1m", help="range of rate() for tasks/s (default 1m)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "report.png", help="PNG to write")
    args = parser.parse_args(argv)
    if not _DURATION.match(args.rate_window):
        parser.error(f"--rate-window: not a duration like 30s or 1m: {args.rate_window!r}")
    start, end, step = window(args, parser)
    series = [Series(name, expr, query_range(args.prometheus, expr, start, end, step))
              for name, expr in report_queries(args.namespace, args.queue, args.rate_window).items()]
    summary = plot(series, args.out, start, end)
    counts = ", ".join(f"{name}: {info['points']} points" for name, info in summary.items())
    print(f"report: {args.out} ({counts})")
    empty = [s.name for s in series if not s.points]
    if empty:
        print(f"report: no data for {', '.join(empty)} in that window (is the stack's monitoring on, "
              f"did `make load` run within it?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
