"""The reports' charts (matplotlib, PNG): records stored by category and month; people provided abroad against the
pack's thresholds in force at the end of the year. Chinese labels use the CJK font `make system-deps` installs."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from onshore.reports.figures import SINCE_PREVIOUS_YEAR
from onshore.reports.i18n import word
from onshore.rules.loader import LoadedPack

_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"]
_COUNTER_FIGURE = {"pi_non_sensitive": "people_pi", "pi": "people_pi", "sensitive_pi": "people_sensitive"}
# the figures counted over each counting window (``reports.figures``)
_WINDOW_PREFIX = {"current_year": "outbound", "previous_year": SINCE_PREVIOUS_YEAR}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _know_cjk_fonts()

    plt.rcParams["font.sans-serif"] = _FONTS
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _know_cjk_fonts() -> None:
    """Add the system's CJK fonts to matplotlib's list when its cache predates them (matplotlib builds the list
    once and keeps it until its own version changes: a font installed later, e.g. by `make system-deps` after a
    first report, would otherwise never be found)."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    if any(font.name in _FONTS[:-1] for font in manager.ttflist):
        return
    for path in font_manager.findSystemFonts():
        if "NotoSansCJK" in path.replace("-", "").replace(" ", ""):
            manager.addfont(path)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def monthly_chart(monthly: dict[str, list[int]], year: int, lang: str) -> bytes:
    """Stacked bars: records stored per month of ``year``, by category."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    bottom = [0] * 12
    months = [str(m) for m in range(1, 13)]
    for category, counts in monthly.items():
        ax.bar(months, counts, bottom=bottom, label=category)
        bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
    ax.set_title(f"{word('chart_monthly', lang)} ({year})")
    ax.set_ylabel(word("records", lang))
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def thresholds_chart(
    figures: dict[str, int],
    pack: LoadedPack,
    year: int,
    lang: str,
    statuses: frozenset[str],
    day: dt.date | None = None,
) -> bytes:
    """Horizontal bars of people provided abroad, counted over each threshold's window, with the threshold bands
    in force on ``day`` (default 31 December of ``year``)."""
    plt = _pyplot()
    outbound = pack.pack.outbound
    day = day or dt.date(year, 12, 31)
    rules = [] if outbound is None else [
        t for t in outbound.thresholds
        if (t.active or t.id in pack.enabled_overrides) and t.effective.contains(day)
        and t.applies_to_processor(statuses) and t.counter in _COUNTER_FIGURE and t.window in _WINDOW_PREFIX
    ]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.7 * max(1, len(rules))))
    labels, values = [], []
    for t in rules:
        labels.append(f"{t.id}\n({t.counter}, {t.window})")
        values.append(figures.get(f"{_WINDOW_PREFIX[t.window]}.{_COUNTER_FIGURE[t.counter]}", 0))
    if not rules:
        labels, values = [word("none", lang)], [0]
    ax.barh(labels, [max(v, 0.5) for v in values], color="#4477aa")
    for y, t in enumerate(rules):
        for band in t.bands[1:]:
            ax.plot([band.at_least, band.at_least], [y - 0.4, y + 0.4], color="#cc3311", linewidth=2)
            ax.annotate(f"{band.at_least:,}", (band.at_least, y + 0.42), fontsize=7, ha="center", color="#cc3311")
    for y, v in enumerate(values):
        ax.annotate(f"{v:,}", (max(v, 0.5), y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(0.5, 5_000_000)
    ax.set_title(f"{word('chart_thresholds', lang)} ({year})")
    ax.tick_params(axis="y", labelsize=7)
    return _png(fig)
