"""Plotly figures of training runs, for the Train and Compare pages: any number of runs overlaid, each in
its own colour on every chart, on a chosen x-axis (step, total FLOPs, tokens, wall time), smoothed with
the raw points faint behind, and downsampled so that a run of 20,000 steps draws as fast as a short one.

Each builder takes a list of curves.Series (or one metrics frame, drawn as a single run) and returns a
figure; nothing here reads the store.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import curves
from dashboard.analysis import accuracy_by_difficulty
from dashboard.curves import Series
from sgpo.accounting import mean_curve

FLOPS_BUCKETS = [
    ("flops_profile", "profiling", "#8e44ad", "dot"),
    ("flops_rollout", "rollouts", "#2e86de", "dash"),
    ("flops_train", "training", "#27ae60", "solid"),
]
LABEL_WIDTH = 0.14  # a phase label's width, as a share of the x-axis (about 50 px on a half-width chart)
LABEL_ROWS = 3  # labels closer than that are staggered over this many rows; beyond, a label is left out
X_HOVER = {"step": "step %{x:,.0f}", "FLOPs": "%{x:.3s}FLOP", "tokens": "%{x:.3s} tokens", "wall time": "%{x:.3g} "}
RAW_OPACITY = 0.25
DASH_WORDS = {"solid": "solid", "dash": "dashed", "dot": "dotted", "dashdot": "dash-dotted"}


def as_series(runs) -> list[Series]:
    """A list of Series as is; a bare metrics frame as one run (what the tests and the bench pass)."""
    return [Series("run", metrics=runs)] if isinstance(runs, pd.DataFrame) else list(runs)


def empty_figure(title: str, message: str) -> go.Figure:
    """A chart that says, in its middle, why it has nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig.update_layout(title=title, height=240, margin=dict(l=10, r=10, t=40, b=10))


class Axis:
    """The chosen x-axis for a set of runs: its title with the unit, and the scale its values are shown in
    (wall time in s, min or h, whichever reads best for the longest run)."""

    def __init__(self, key: str, runs: list[Series]):
        self.key = key if key in curves.X_AXES else "step"
        self.title, self.scale, unit = curves.X_AXES[self.key], 1.0, ""
        if self.key == "wall time":
            longest = max(
                [
                    float(np.nanmax(x))
                    for x in (curves.x_values(s.metrics, self.key) for s in runs)
                    if x is not None and len(x)
                ]
                or [0.0]
            )
            unit, self.scale = curves.wall_unit(longest)
            self.title = f"wall time ({unit})"
        self.hover = X_HOVER[self.key] + unit

    def of(self, series: Series) -> np.ndarray | None:
        x = curves.x_values(series.metrics, self.key)
        return None if x is None else x / self.scale

    def of_evals(self, series: Series) -> np.ndarray | None:
        x = curves.eval_x(series.evals, series.metrics, self.key)
        return None if x is None else x / self.scale

    def style(self, fig: go.Figure) -> None:
        fig.update_xaxes(title_text=self.title, **({"tickformat": "~s"} if self.key in ("FLOPs", "tokens") else {}))


def framed(fig: go.Figure, title: str, *, note: str = "", height: int = 340) -> go.Figure:
    """The frame every run and rollout chart shares: title (with `note` as its subtitle), height, margins, the
    legend below, hover on the nearest point."""
    return fig.update_layout(
        title=dict(text=title, subtitle=dict(text=note)),
        height=height + (16 if note else 0),
        margin=dict(l=10, r=10, t=56 if note else 40, b=10),
        legend=dict(orientation="h", y=-0.3),
        hovermode="closest",
    )


def _layout(
    fig: go.Figure, title: str, axis: Axis, y_title: str, y_format: str | None = None, height: int = 340, note: str = ""
) -> go.Figure:
    """Title (with `note`, what the line styles mean, as its subtitle), axis titles with units, legend below."""
    framed(fig, title, note=note, height=height)
    axis.style(fig)
    fig.update_yaxes(title_text=y_title, **({"tickformat": y_format} if y_format else {}))
    return fig


def fit_range(values, *, floor_span: float = 0.1, pad: float = 0.1) -> list[float] | None:
    """A y range for rates in [0, 1] that fits the data: their lowest and highest values, padded by `pad` of
    the span and at least `floor_span` wide, kept inside [0, 1] (a little beyond, so points at 0 or 1 show
    whole). None when no value is finite: plotly then picks."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, floor_span)
    mid = (lo + hi) / 2
    lo, hi = mid - span / 2 - pad * span, mid + span / 2 + pad * span
    if lo < 0:
        lo, hi = 0.0, min(1.0, hi - lo)
    if hi > 1:
        lo, hi = max(0.0, lo - (hi - 1)), 1.0
    margin = 0.02 * (hi - lo)
    return [lo - margin if lo <= 0 else lo, hi + margin if hi >= 1 else hi]


def label_rows(xs: list[float], span: float, width: float = LABEL_WIDTH, rows: int = LABEL_ROWS) -> list[int | None]:
    """For labels at positions `xs` on an axis `span` wide, the row each is drawn in (0 at the top) so that no
    two in a row are closer than `width` of the span; None for a label no row has room for (its line stays)."""
    last: list[float] = [-np.inf] * rows
    out: list[int | None] = []
    gap = width * span if span > 0 else 0.0
    for x in xs:
        row = next((r for r in range(rows) if x - last[r] >= gap), None)
        if row is not None:
            last[row] = x
        out.append(row)
    return out


def _marks(fig: go.Figure, runs: list[Series], axis: Axis, forecasts: bool = False) -> go.Figure:
    """Phase changes as dotted vertical lines in each run's colour, labelled where the labels do not overlap
    (label_rows: staggered over a few rows, thinned beyond); with `forecasts`, each run's planned wasted
    fraction as a dashed horizontal line. Added in one layout update (one add_vline per mark costs
    milliseconds each)."""
    shapes, notes = [], []
    marks = []
    xs_all = []
    for s in runs:
        x = axis.of(s)
        if x is not None:
            marks += [(xm, phase, s) for xm, phase in curves.phase_marks(s.metrics, x)]
            xs_all.append(x[np.isfinite(x)])
    marks.sort(key=lambda m: m[0])
    finite = np.concatenate(xs_all) if xs_all else np.zeros(0)
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    rows = label_rows([m[0] for m in marks], span)
    for (xm, phase, s), row in zip(marks, rows):
        shapes.append(
            dict(
                type="line",
                xref="x",
                yref="paper",
                x0=xm,
                x1=xm,
                y0=0,
                y1=1,
                line=dict(color=s.color, dash="dot", width=1),
            )
        )
        if row is not None:
            notes.append(
                dict(
                    x=xm,
                    y=1 - 0.07 * row,
                    xref="x",
                    yref="paper",
                    text=f"phase {phase}",
                    showarrow=False,
                    xanchor="left",
                    yanchor="top",
                    font=dict(size=10, color=s.color),
                )
            )
    for s in runs if forecasts else []:
        if s.forecast is not None:
            shapes.append(
                dict(
                    type="line",
                    xref="paper",
                    yref="y",
                    x0=0,
                    x1=1,
                    y0=s.forecast,
                    y1=s.forecast,
                    line=dict(color=s.color, dash="dash", width=1.5),
                )
            )
            label = "plan forecast" if len(runs) == 1 else f"{s.name} forecast"
            notes.append(
                dict(
                    x=1,
                    y=s.forecast,
                    xref="paper",
                    yref="y",
                    text=f"{label} {s.forecast:.1%}",
                    showarrow=False,
                    xanchor="right",
                    yanchor="bottom",
                    font=dict(size=10, color=s.color),
                )
            )
    if shapes:
        fig.update_layout(shapes=list(fig.layout.shapes) + shapes, annotations=list(fig.layout.annotations) + notes)
    return fig


def _lines(
    runs,
    axis_key: str,
    weight: float,
    columns: list[tuple],
    title: str,
    y_title: str,
    y_hover: str,
    y_format: str | None = None,
    forecasts: bool = False,
) -> go.Figure:
    """One colour per run; the first column (metric, label) smoothed, raw points faint behind it; the others
    (metric, label[, dash]) dashed as logged (run totals and fractions so far are smooth already)."""
    columns = [(c[0], c[1], c[2] if len(c) > 2 else "solid" if j == 0 else "dash") for j, c in enumerate(columns)]
    runs = as_series(runs)
    axis = Axis(axis_key, runs)
    single = len(runs) == 1
    buckets = max(200, curves.BUCKETS // max(1, len(runs)))  # eight lines of 400 points read as well as one of 1,600
    traces = []
    for s in runs:
        x = axis.of(s)
        if x is None:
            continue
        for j, (col, label, dash) in enumerate(columns):
            if col not in s.metrics or s.metrics[col].isna().all():
                continue
            c = curves.curve(x, s.metrics[col], weight if j == 0 else 0.0, buckets)
            name = label if single else (s.name if j == 0 else f"{s.name} · {label}")
            hover = f"{s.name} · {label}<br>{axis.hover}<br>{y_hover}<extra></extra>"
            common = dict(mode="lines", legendgroup=s.name, hovertemplate=hover)
            if j == 0 and c["smooth"] is not None:
                traces.append(
                    go.Scatter(
                        x=c["x"],
                        y=c["raw"],
                        name=f"{name} (raw)",
                        showlegend=False,
                        opacity=RAW_OPACITY,
                        line=dict(color=s.color, width=1),
                        hoverinfo="skip",
                        mode="lines",
                        legendgroup=s.name,
                    )
                )
                traces.append(
                    go.Scatter(x=c["x"], y=c["smooth"], name=name, line=dict(color=s.color, width=2), **common)
                )
            else:
                traces.append(
                    go.Scatter(
                        x=c["x"],
                        y=c["raw"],
                        name=name,
                        showlegend=single or j == 0,
                        line=dict(color=s.color, width=1.5 if j == 0 else 1.2, dash=dash),
                        **common,
                    )
                )
    if not traces:
        return empty_figure(
            title,
            "waiting for the first step"
            if all(s.metrics.empty for s in runs)
            else f"nothing logged on this x-axis ({axis.key})",
        )
    styles = (
        (["faint: raw values"] if weight > 0 else [])
        + ([f"{DASH_WORDS[dash]}: {label}" for _, label, dash in columns[1:]] if not single else [])
        + (["straight dashed: plan forecast"] if forecasts and any(s.forecast is not None for s in runs) else [])
    )
    fig = go.Figure(data=traces)
    return _marks(_layout(fig, title, axis, y_title, y_format, note=" · ".join(styles)), runs, axis, forecasts)


def reward_figure(runs, axis: str = "step", smooth: float = 0.0) -> go.Figure:
    return _lines(
        runs, axis, smooth, [("reward_mean", "mean reward")], "reward", "mean reward per rollout", "reward %{y:.3f}"
    )


def wasted_figure(runs, axis: str = "step", smooth: float = 0.0) -> go.Figure:
    """Share of rollouts in zero-advantage groups: each step's own (smoothed), the run's so far (dashed),
    and the plan's forecast for runs that stored one (a dashed horizontal line)."""
    fig = _lines(
        runs,
        axis,
        smooth,
        [("step_wasted_fraction", "this step"), ("run_wasted_fraction", "run so far")],
        "wasted-rollout fraction",
        "wasted rollouts (%)",
        "%{y:.1%} wasted",
        y_format=".0%",
        forecasts=True,
    )
    return fig.update_yaxes(range=[0, 1.02]) if fig.data else fig


def informative_figure(runs, axis: str = "step", smooth: float = 0.0) -> go.Figure:
    return _lines(
        runs,
        axis,
        smooth,
        [("informative_groups", "informative groups"), ("groups", "all groups")],
        "informative groups per step",
        "groups per step",
        "%{y:,.0f} groups",
    )


def gauge_figure(runs, axis: str = "step") -> go.Figure:
    """The critical-batch gauge (issue 21; sgpo/train/noise.py): B_simple in rollouts a step, smoothed by the trainer
    (an EMA over about 100 steps), against the rollouts and informative rollouts each step held, on a log axis. A
    step far above B_simple is step-limited, far below it sample-limited (sgpo.gauge.verdict says which in words).
    B_simple is not drawn while the noise still hides the mean gradient (logged as inf)."""
    shown = []
    for s in as_series(runs):
        m = s.metrics
        if {"rollouts", "wasted_rollouts"} <= set(m.columns):
            m = m.assign(informative_rollouts=m["rollouts"] - m["wasted_rollouts"])
        if "noise_scale_rollouts" in m.columns:
            b = pd.to_numeric(m["noise_scale_rollouts"], errors="coerce")
            m = m.assign(noise_scale_rollouts=b.where(np.isfinite(b) & (b > 0)))
        shown.append(replace(s, metrics=m))
    fig = _lines(
        shown,
        axis,
        0.0,
        [
            ("noise_scale_rollouts", "critical batch B_simple"),
            ("rollouts", "rollouts a step", "dash"),
            ("informative_rollouts", "informative rollouts a step", "dot"),
        ],
        "critical batch against the step's rollouts",
        "rollouts a step (log scale)",
        "%{y:,.0f} rollouts",
    )
    return fig.update_yaxes(type="log") if fig.data else fig


def flops_figure(runs, axis: str = "step") -> go.Figure:
    """Cumulative FLOPs by bucket: profiling, rollout generation, training updates. One run: stacked
    areas; several: each run in its colour, the bucket told by the dash."""
    runs = as_series(runs)
    title = "cumulative compute by bucket"
    if len(runs) > 1:
        return _lines(
            runs,
            axis,
            0.0,
            [(c, n, dash) for c, n, _, dash in FLOPS_BUCKETS[::-1]],
            title,
            "cumulative compute (FLOP)",
            "%{y:.3s}FLOP",
            "~s",
        )
    s, ax = runs[0], Axis(axis, runs)
    x = ax.of(s)
    present = [b for b in FLOPS_BUCKETS if b[0] in s.metrics]
    if s.metrics.empty or not present or x is None:
        return empty_figure(title, "waiting for the first step")
    fig = go.Figure()
    keep = curves.minmax_indices(x)  # x is monotone: this keeps evenly spaced rows, the same for every bucket
    for col, name, color, _ in present:
        fig.add_scatter(
            x=x[keep],
            y=s.metrics[col].to_numpy(dtype=float)[keep],
            mode="lines",
            name=name,
            stackgroup="flops",
            line_color=color,
            hovertemplate=f"{name}<br>{ax.hover}<br>%{{y:.3s}}FLOP<extra></extra>",
        )
    return _marks(_layout(fig, title, ax, "cumulative compute (FLOP)", "~s"), runs, ax)


def accuracy_figure(runs, axis: str = "step") -> go.Figure:
    """Held-out accuracy: for one run per difficulty level and overall (dashed); for several, each run's
    overall accuracy in its colour."""
    runs = as_series(runs)
    title = "held-out accuracy" + (" by difficulty" if len(runs) == 1 else "")
    ax = Axis(axis, runs)
    fig = go.Figure()
    for s in runs:
        x = ax.of_evals(s)
        if x is None or s.evals.empty:
            continue
        if len(runs) == 1:
            at = dict(zip(s.evals["step"], x))
            for level, part in accuracy_by_difficulty(s.evals).groupby("difficulty", sort=False):
                fig.add_scatter(
                    x=part["step"].map(at),
                    y=part["accuracy"],
                    mode="lines+markers" if len(part) <= 60 else "lines",
                    name=f"difficulty {level}",
                    hovertemplate=f"difficulty {level}<br>{ax.hover}<br>%{{y:.1%}}<extra></extra>",
                )
        fig.add_scatter(
            x=x,
            y=s.evals["accuracy"],
            mode="lines+markers" if len(x) <= 60 else "lines",
            name="overall" if len(runs) == 1 else s.name,
            line=dict(color=s.color, dash="dash" if len(runs) == 1 else "solid"),
            legendgroup=s.name,
            hovertemplate=f"{s.name}<br>{ax.hover}<br>accuracy %{{y:.1%}}<extra></extra>",
        )
    if not fig.data:
        return empty_figure(title, "no evaluation yet")
    values = np.concatenate([np.asarray(t.y, dtype=float) for t in fig.data])
    lo_hi = fit_range(values)  # a few points between strategies must show: the axis fits the data, not 0-100%
    fig.update_yaxes(range=lo_hi)
    fmt = ".1%" if lo_hi is not None and lo_hi[1] - lo_hi[0] < 0.1 else ".0%"
    return _marks(_layout(fig, title, ax, "accuracy (%)", fmt), runs, ax)


def settings_accuracy_figure(settings: list[tuple[str, list[Series]]], axis: str = "step") -> go.Figure:
    """Held-out accuracy per setting: the seeds of one setting (runs whose configs differ only in seed,
    sgpo.compare.settings) as their mean curve (sgpo.accounting.mean_curve, over the range every seed covers)
    with a band from the lowest to the highest seed; a setting of one run as its own line."""
    seeded = any(len(group) > 1 for _, group in settings)
    title = "held-out accuracy" + (", seeds averaged" if seeded else "")
    runs = [s for _, group in settings for s in group]
    ax = Axis(axis, runs)
    fig = go.Figure()
    for label, group in settings:
        curves_ = []
        for s in group:
            x = ax.of_evals(s)
            if x is not None and not s.evals.empty:
                curves_.append(pd.DataFrame({"x": x, "accuracy": s.evals["accuracy"].to_numpy(dtype=float)}))
        if not curves_:
            continue
        color = group[0].color
        name = label if len(curves_) == 1 else f"{label} (mean of {len(curves_)} seeds)"
        mean = mean_curve(curves_, axis="x") if len(curves_) > 1 else curves_[0].assign(low=np.nan, high=np.nan)
        if len(curves_) > 1 and len(mean):
            fig.add_scatter(
                x=np.concatenate([mean["x"], mean["x"][::-1]]),
                y=np.concatenate([mean["high"], mean["low"][::-1]]),
                fill="toself",
                fillcolor=color,
                opacity=0.2,
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                legendgroup=label,
            )
        fig.add_scatter(
            x=mean["x"],
            y=mean["accuracy"],
            mode="lines+markers" if len(mean) <= 60 else "lines",
            name=name,
            line=dict(color=color),
            legendgroup=label,
            hovertemplate=f"{name}<br>{ax.hover}<br>accuracy %{{y:.1%}}<extra></extra>",
        )
    if not fig.data:
        return empty_figure(title, "no evaluation yet")
    values = np.concatenate([np.asarray(t.y, dtype=float) for t in fig.data])
    lo_hi = fit_range(values)
    fmt = ".1%" if lo_hi is not None and lo_hi[1] - lo_hi[0] < 0.1 else ".0%"
    fig.update_yaxes(range=lo_hi)
    note = "band: lowest to highest seed" if seeded else ""
    return _layout(fig, title, ax, "accuracy (%)", fmt, note=note)
