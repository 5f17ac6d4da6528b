"""The trials table of a search: Markdown, and HTML with one plot of score by parameter per searched parameter.

The plots are inline SVG drawn here (points of every scored trial, the winner ringed, the baseline's score as a
dashed line): the tune image needs no plotting library, and the page is one self-contained file.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlkeel.components.tune.logic import TrialResult, TuningSummary

PLOT_WIDTH = 320
PLOT_HEIGHT = 200
PLOT_MARGIN = 36


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _score(value: float) -> str:
    return "failed" if math.isnan(value) else f"{value:.4f}"


def parameter_names(results: list[TrialResult]) -> list[str]:
    """Every hyperparameter any trial set, in first-seen order.

    Args:
        results: The trials.

    Returns:
        The names.
    """
    names: list[str] = []
    for result in results:
        names += [name for name in result.hyperparameters if name not in names]
    return names


def render_markdown(results: list[TrialResult], summary: TuningSummary) -> str:
    """The trials table in Markdown, best first, with the chosen trial marked.

    Args:
        results: Every trial's result.
        summary: The search's summary.

    Returns:
        The Markdown text.
    """
    names = parameter_names(results)
    ordered = _ordered(results, summary)
    lines = [
        f"# Hyperparameter search: {summary.estimator}",
        "",
        f"{summary.trials} trials (seed {summary.seed}), scored by validation {summary.metric} on a validation part "
        f"of the train split (never the holdout). Chosen: trial {summary.best_trial}, {_score(summary.best_score)} "
        f"(baseline, trial 0: {_score(summary.baseline_score)}).",
        "",
        "| trial | "
        + " | ".join(["validation " + summary.metric, "train " + summary.metric, "seconds", *names])
        + " |",
        "| --- " * (4 + len(names)) + "|",
    ]
    for result in ordered:
        mark = " (chosen)" if result.trial == summary.best_trial else ""
        mark += " (baseline)" if result.trial == 0 else ""
        cells = [
            f"{result.trial}{mark}",
            _score(result.score) + (f" ({result.error[:80]})" if result.error else ""),
            _score(result.train_score),
            f"{result.seconds:.1f}",
            *(_value(result.hyperparameters[name]) if name in result.hyperparameters else "default" for name in names),
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _ordered(results: list[TrialResult], summary: TuningSummary) -> list[TrialResult]:
    from mlkeel.metrics import HIGHER_IS_BETTER

    sign = -1.0 if HIGHER_IS_BETTER[summary.metric] else 1.0
    return sorted(results, key=lambda result: (math.isnan(result.score), sign * _or_zero(result.score), result.trial))


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def score_plot(results: list[TrialResult], name: str, summary: TuningSummary) -> str:
    """An SVG scatter of validation score by one parameter's value (numeric axis; categories evenly spaced).

    Args:
        results: Every trial's result.
        name: The parameter.
        summary: The search's summary (winner, baseline score, metric).

    Returns:
        The ``<svg>`` element.
    """
    points = [
        (result.hyperparameters[name], result.score, result.trial)
        for result in results
        if name in result.hyperparameters and not math.isnan(result.score)
    ]
    numeric = all(isinstance(value, (int, float)) and not isinstance(value, bool) for value, _, _ in points)
    categories = [] if numeric else sorted({str(value) for value, _, _ in points})
    if numeric and points:
        xs = [float(value) for value, _, _ in points]
        positive = min(xs) > 0
        spread = max(xs) / min(xs) if positive else 0.0
        log_axis = positive and spread >= 20
        xs = [math.log10(x) for x in xs] if log_axis else xs
    else:
        log_axis = False
        xs = [float(categories.index(str(value))) for value, _, _ in points]
    scores = [score for _, score, _ in points] + (
        [] if math.isnan(summary.baseline_score) else [summary.baseline_score]
    )
    x_low, x_high = _bounds(xs)
    y_low, y_high = _bounds(scores)
    inner_w, inner_h = PLOT_WIDTH - 2 * PLOT_MARGIN, PLOT_HEIGHT - 2 * PLOT_MARGIN

    def x_of(x: float) -> float:
        return PLOT_MARGIN + (x - x_low) / (x_high - x_low) * inner_w

    def y_of(y: float) -> float:
        return PLOT_HEIGHT - PLOT_MARGIN - (y - y_low) / (y_high - y_low) * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" role="img" '
        f'aria-label="validation {html.escape(summary.metric)} by {html.escape(name)}">',
        f'<rect x="{PLOT_MARGIN}" y="{PLOT_MARGIN}" width="{inner_w}" height="{inner_h}" fill="none" stroke="#999"/>',
        f'<text x="{PLOT_WIDTH / 2}" y="{PLOT_HEIGHT - 6}" text-anchor="middle" font-size="12">'
        f"{html.escape(name)}{' (log scale)' if log_axis else ''}</text>",
        f'<text x="10" y="{PLOT_MARGIN - 10}" font-size="11">validation {html.escape(summary.metric)}</text>',
        f'<text x="{PLOT_MARGIN - 4}" y="{PLOT_MARGIN + 4}" text-anchor="end" font-size="9">{y_high:.3f}</text>',
        f'<text x="{PLOT_MARGIN - 4}" y="{PLOT_HEIGHT - PLOT_MARGIN}" text-anchor="end" font-size="9">'
        f"{y_low:.3f}</text>",
    ]
    if not math.isnan(summary.baseline_score):
        y = y_of(summary.baseline_score)
        parts.append(
            f'<line x1="{PLOT_MARGIN}" x2="{PLOT_WIDTH - PLOT_MARGIN}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#888" stroke-dasharray="4 3"><title>baseline</title></line>'
        )
    for (value, score, trial), x in zip(points, xs, strict=True):
        chosen = trial == summary.best_trial
        parts.append(
            f'<circle cx="{x_of(x):.1f}" cy="{y_of(score):.1f}" r="{6 if chosen else 4}" '
            f'fill="{"#d62728" if chosen else "#1f77b4"}" fill-opacity="0.8"><title>trial {trial}: '
            f"{html.escape(name)}={html.escape(_value(value))}, {score:.4f}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _bounds(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or max(abs(high) * 0.01, 1e-3)
    return low - pad, high + pad


def render_html(results: list[TrialResult], summary: TuningSummary) -> str:
    """The trials page: the summary, one plot of score by parameter per parameter, and the table.

    Args:
        results: Every trial's result.
        summary: The search's summary.

    Returns:
        A self-contained HTML page.
    """
    names = parameter_names(results)
    rows = []
    for result in _ordered(results, summary):
        style = ' style="background:#fde"' if result.trial == summary.best_trial else ""
        cells = [
            str(result.trial),
            html.escape(_score(result.score) + (f" ({result.error[:80]})" if result.error else "")),
            _score(result.train_score),
            f"{result.seconds:.1f}",
            *(
                html.escape(_value(result.hyperparameters[name])) if name in result.hyperparameters else "default"
                for name in names
            ),
        ]
        rows.append(f"<tr{style}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    header = "".join(
        f"<th>{html.escape(text)}</th>"
        for text in ["trial", f"validation {summary.metric}", f"train {summary.metric}", "seconds", *names]
    )
    plots = "".join(score_plot(results, name, summary) for name in names)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Hyperparameter search: {html.escape(summary.estimator)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}svg{margin:4px}</style></head><body>"
        f"<h1>Hyperparameter search: {html.escape(summary.estimator)}</h1>"
        f"<p>{summary.trials} trials (seed {summary.seed}), scored by validation {html.escape(summary.metric)} on "
        "a validation part of the train split (never the holdout). Chosen: trial "
        f"{summary.best_trial} ({_score(summary.best_score)}, red); baseline (trial 0, dashed line): "
        f"{_score(summary.baseline_score)}.</p>"
        f"<h2>Score by parameter</h2><div>{plots}</div>"
        f"<h2>Trials</h2><table><tr>{header}</tr>{''.join(rows)}</table></body></html>\n"
    )
