"""Pictures of the dashboards without a Grafana, for the README: same grid, same queries, sample data.

Each panel is drawn where its gridPos puts it, from the rows its own
queries return on a simulated province (``scenarios.sample``), so the
picture shows what an officer will get, roughly as Grafana lays it out.
Needs matplotlib (``pip install 'meterwatch[docs]'``) and a CJK font
(Debian: fonts-wqy-microhei or fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from dashboards.boards import all_boards
from dashboards.grafana import GRID_WIDTH, Dashboard
from scenarios.facts import analytics_facts
from scenarios.sample import BOARD_RANGE, PICKS_INSTITUTION, load_sample
from dashboards.validate import QueryRun, run_board, variable_values
from meterwatch.settings import Settings
from meterwatch.store import ReadingPoint, WeighingPoint, store_for
from dashboards.cli import influx_store

log = logging.getLogger(__name__)
CJK_FONTS = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "SimHei"]
ROW_PX = 0.42  # inches per grid row


def run(args: argparse.Namespace, settings: Settings) -> int:
    """``meterwatch dashboards render --out D``: into an empty scratch InfluxDB only."""
    if args.out is None:
        raise ValueError("dashboards render needs --out DIR")
    influx_store(settings)
    for path in asyncio.run(render_all(settings, args.out, institutions=args.institutions)):
        print(f"wrote {path}")
    return 0


async def refuse_real_data(settings: Settings) -> None:
    """The sample is simulated: it must never land in a store that holds anything else."""
    store = store_for(settings)
    try:
        await store.open()
        held = {t.__name__: await store.count(t) for t in (ReadingPoint, WeighingPoint)}
    finally:
        await store.close()
    if any(held.values()):
        raise ValueError(f"refusing to load a simulated province into a store that holds data ({held}); "
                         "point METERWATCH_STORE at an empty scratch database")


async def render_all(settings: Settings, out: Path, *, institutions: int = 60, days: int = 14) -> list[Path]:
    await refuse_real_data(settings)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="meterwatch-render-") as tmp:
        sample = await load_sample(settings, Path(tmp), institutions=institutions, days=days)
    store = store_for(settings)
    paths = []
    try:
        shown = sample.showcase()
        for board in all_boards(settings, analytics_facts(settings)):
            chosen = {"name": shown.name} if board.uid in PICKS_INSTITUTION else {}
            values = await variable_values(store, board, chosen)
            runs = await run_board(store, board, values, int(time.time()), BOARD_RANGE.get(board.uid))
            path = out / f"{board.uid}.png"
            draw(board, runs, path)
            paths.append(path)
    finally:
        await store.close()
    return paths


def draw(board: Dashboard, runs: list[QueryRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = CJK_FONTS + plt.rcParams["font.sans-serif"]
    plt.rcParams["axes.unicode_minus"] = False
    placed = board.placed()
    rows = max(pos["y"] + pos["h"] for _, pos, _ in placed)
    fig = plt.figure(figsize=(16, rows * ROW_PX + 0.6), facecolor="#111217")
    fig.suptitle(board.title, color="white", fontsize=14, x=0.01, ha="left")
    by_panel: dict[str, list[QueryRun]] = {}
    for run in runs:
        by_panel.setdefault(run.panel, []).append(run)
    top = 1 - 0.6 / (rows * ROW_PX + 0.6)
    for _, pos, panel in placed:
        left, width = pos["x"] / GRID_WIDTH, pos["w"] / GRID_WIDTH
        height = pos["h"] / rows * top
        bottom = top - (pos["y"] + pos["h"]) / rows * top
        ax = fig.add_axes((left + 0.004, bottom + 0.004, width - 0.008, height - 0.03), facecolor="#181b1f")
        ax.set_title(panel.title, color="#d8d9da", fontsize=8, loc="left")
        ax.tick_params(colors="#8e8e8e", labelsize=6)
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        _content(ax, panel.type, by_panel.get(panel.title, []), panel.mappings)
    fig.savefig(path, dpi=80, facecolor=fig.get_facecolor())
    plt.close(fig)


def _label(series: dict[str, Any], column: str, mappings: Any) -> str:
    tags = series.get("tags") or {}
    text = " ".join(mappings.get(v, v) for v in tags.values()) if tags else ""
    return text or column


def _content(ax: Any, kind: str, runs: list[QueryRun], mappings: Any) -> None:
    series = [s for r in runs for s in r.series]
    if not series:
        ax.text(0.5, 0.5, "无数据 No data", color="#8e8e8e", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([]), ax.set_yticks([])
        return
    if kind == "timeseries":
        for s in series[:12]:
            cols = s["columns"]
            for k in range(1, len(cols)):
                points = [(row[0], row[k]) for row in s["values"] if isinstance(row[k], (int, float))]
                if points:
                    xs, ys = zip(*points, strict=True)
                    ax.plot(xs, ys, linewidth=0.9, label=_label(s, cols[k], mappings))
        ax.set_xticks([])
        ax.legend(fontsize=5, loc="upper left", framealpha=0.3, ncol=3)
        return
    if kind == "stat":
        row = series[0]["values"][-1]
        value = next((v for v in reversed(row[1:]) if isinstance(v, (int, float))), None)
        ax.text(0.5, 0.45, "—" if value is None else f"{value:,.1f}", color="#73bf69", fontsize=18,
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([]), ax.set_yticks([])
        return
    if kind in ("bargauge", "piechart"):
        labels, values = [], []
        for s in series[:15]:
            for row in s["values"][:15]:
                number = next((v for v in reversed(row[1:]) if isinstance(v, (int, float))), None)
                if number is not None:
                    labels.append(_label(s, s["columns"][-1], mappings))
                    values.append(number)
        if kind == "piechart" and values and min(values) >= 0:
            ax.pie(values, labels=labels, textprops={"fontsize": 6, "color": "#d8d9da"})
        else:
            ax.barh(range(len(values)), values, color="#5794f2")
            ax.set_yticks([])
            for k, (text, value) in enumerate(zip(labels, values, strict=True)):
                ax.text(0, k, f" {text}  {value:,.1f}", color="white", fontsize=6, va="center")
            ax.invert_yaxis()
        return
    _table(ax, series, mappings)


def _table(ax: Any, series: list[dict[str, Any]], mappings: Any) -> None:
    ax.set_xticks([]), ax.set_yticks([])
    header = [t for t in (series[0].get("tags") or {})] + series[0]["columns"][1:]
    lines = ["   ".join(header)]
    for s in series:
        tags = [mappings.get(v, v) for v in (s.get("tags") or {}).values()]
        for row in s["values"]:
            cells = tags + [f"{v:.1f}" if isinstance(v, float) else str(mappings.get(v, v) if isinstance(v, str)
                                                                         else v) for v in row[1:]]
            lines.append("   ".join(c[:28] for c in cells))
    lines = lines[:15]
    ax.text(0.01, 0.97, "\n".join(lines), color="#d8d9da", fontsize=5.5, va="top", ha="left",
            transform=ax.transAxes, family="sans-serif")
