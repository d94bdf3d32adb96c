"""Plotly figures of profiles and plans (Audit, Plan): plain functions from frames to figures, called by the
pages and the tests. Training runs are drawn by run_figures.py.

Big tables are reduced before they reach plotly (a histogram is sent as bar counts, not 100,000
points), so a figure costs the same to draw whatever the dataset size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sgpo.vocab import DECISIONS

COLORS = {"trivial": "#9aa5b1", "learnable": "#2e86de", "unsolved_kept": "#e67e22", "unsolved_dropped": "#d9d9d9"}
MAX_BARS = 50


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "", "", height=240)


# audit ---------------------------------------------------------------------------------------------
def p_hat_histogram(frame: pd.DataFrame) -> go.Figure:
    """Queries per p_hat value, stacked by the plan's decision (p_hat is successes / samples, so it
    takes few distinct values; with more than MAX_BARS of them it is binned)."""
    title = "p_hat per query, coloured by the plan's decision"
    if frame.empty:
        return _empty(title, "no profiled queries yet")
    p = frame["p_hat"].to_numpy(dtype=float)
    values = np.unique(np.round(p, 6))
    if len(values) > MAX_BARS:
        edges = np.linspace(0, 1, MAX_BARS + 1)
        x = (edges[np.clip(np.digitize(p, edges) - 1, 0, MAX_BARS - 1)] + 0.5 / MAX_BARS).round(6)
        width = 1 / MAX_BARS
    else:
        x, width = np.round(p, 6), (np.diff(values).min() * 0.9 if len(values) > 1 else 0.05)
    decision = frame["decision"] if "decision" in frame else pd.Series("learnable", index=frame.index)
    counts = pd.DataFrame({"x": x, "decision": decision.to_numpy()}).groupby(["decision", "x"]).size()
    fig = go.Figure()
    for d in DECISIONS:
        if d in counts.index.get_level_values(0):
            c = counts.loc[d]
            fig.add_bar(x=c.index.to_numpy(), y=c.to_numpy(), name=d, marker_color=COLORS[d], width=width)
    return _p_hat_bars(fig, title, "stack")


def _p_hat_bars(fig: go.Figure, title: str, barmode: str) -> go.Figure:
    """Bars over the p_hat axis [0, 1], stacked or overlaid."""
    fig.update_layout(barmode=barmode)
    fig.update_xaxes(range=[-0.05, 1.05])
    return _layout(fig, title, "p_hat (successes / samples)", "queries")


def difficulty_heatmap(frame: pd.DataFrame) -> go.Figure:
    """Mean p_hat per task (rows) and difficulty level (columns); hover shows the query count."""
    title = "mean p_hat by task and difficulty"
    if frame.empty:
        return _empty(title, "no profiled queries yet")
    mean, count = task_difficulty_grid(frame, "p_hat")
    z = mean.to_numpy()
    return _grid_figure(
        title,
        mean,
        go.Heatmap(
            z=z,
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            customdata=count.to_numpy(),
            text=np.where(np.isnan(z), "", np.round(z, 2).astype(str)),
            colorbar=dict(title="p_hat"),
            hovertemplate="task %{y}, difficulty %{x}<br>mean p_hat %{z:.3f}<br>%{customdata} queries<extra></extra>",
        ),
    )


def task_difficulty_grid(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean of `column`, query count) per task (rows) and difficulty (columns)."""
    grouped = frame.groupby(["task", "difficulty"])[column]
    mean = grouped.mean().unstack("difficulty").sort_index(axis=1)
    return mean, grouped.size().unstack("difficulty").reindex_like(mean).fillna(0).astype(int)


def _grid_figure(title: str, mean: pd.DataFrame, heatmap: go.Heatmap) -> go.Figure:
    heatmap.update(x=[str(c) for c in mean.columns], y=[str(r) for r in mean.index], texttemplate="%{text}")
    fig = go.Figure(heatmap)
    fig.update_xaxes(type="category")
    return _layout(fig, title, "difficulty", "task", height=max(240, 60 * len(mean) + 120))


# plan ----------------------------------------------------------------------------------------------
def phase_timeline(phases: list[dict]) -> go.Figure:
    """The curriculum as consecutive segments, one per phase, each as wide as one pass over its queries
    costs in rollouts (queries x group size)."""
    title = "phase timeline (one pass over each phase, in rollouts)"
    if not phases:
        return _empty(title, "no phases: every query is dropped at these knobs")
    fig, start = go.Figure(), 0.0
    palette = ["#74b9ff", "#2e86de", "#1e3799", "#0c2461", "#6c5ce7", "#a29bfe"]
    for i, ph in enumerate(phases):
        g = ph.get("group_size") or 0
        n = ph.get("count") or 0
        width = float(ph.get("rollouts") or n * (g or 1))
        label = f"phase {ph.get('phase', i)}: G={g if g else 'mixed'}, {n:,} queries"
        fig.add_bar(
            y=["curriculum"],
            x=[width],
            base=[start],
            orientation="h",
            name=label,
            marker_color=palette[i % len(palette)],
            text=[label],
            textposition="inside",
            insidetextanchor="middle",
            hovertemplate=f"{label}<br>{width:,.0f} rollouts<extra></extra>",
        )
        start += width
    fig.update_layout(barmode="overlay", showlegend=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "rollouts", "", height=160)


# before against after (sgpo.drift) ---------------------------------------------------------------
def transition_heatmap(counts: pd.DataFrame) -> go.Figure:
    """Bucket before (rows, easiest on top) against bucket after (columns): each cell's query count and its
    share of the row, shaded by that share, so the diagonal reads as "stayed"."""
    title = "plan buckets: before (rows) → after (columns)"
    if counts.empty or counts.to_numpy().sum() == 0:
        return _empty(title, "no queries in both profiles")
    n = counts.to_numpy()
    share = n / np.maximum(n.sum(axis=1, keepdims=True), 1)
    text = [[f"{c:,}<br>{s:.0%}" if c else "" for c, s in zip(rc, rs)] for rc, rs in zip(n, share)]
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=list(counts.columns),
            y=list(counts.index),
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            customdata=n,
            colorbar=dict(title="share of row", tickformat=".0%"),
            hovertemplate="before %{y} → after %{x}<br>%{customdata:,} queries (%{z:.1%} of the row)<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    return _layout(fig, title, "bucket after", "bucket before", height=140 + 48 * len(counts))


def p_hat_overlay(both: pd.DataFrame) -> go.Figure:
    """The two p_hat distributions over the same queries, overlaid: counts per p_hat value (binned when
    there are more than MAX_BARS distinct values)."""
    title = "p_hat before and after, same queries"
    if both.empty:
        return _empty(title, "no queries in both profiles")
    p = np.concatenate([both["p_hat_before"].to_numpy(float), both["p_hat_after"].to_numpy(float)])
    values = np.unique(np.round(p, 6))
    if len(values) > MAX_BARS:
        edges = np.linspace(0, 1, MAX_BARS + 1)

        def at(x):
            return (edges[np.clip(np.digitize(x, edges) - 1, 0, MAX_BARS - 1)] + 0.5 / MAX_BARS).round(6)

        width = 1 / MAX_BARS
    else:

        def at(x):
            return np.round(x, 6)

        width = np.diff(values).min() * 0.9 if len(values) > 1 else 0.05
    fig = go.Figure()
    for side, color in (("before", "#9aa5b1"), ("after", "#2e86de")):
        counts = pd.Series(at(both[f"p_hat_{side}"].to_numpy(float))).value_counts().sort_index()
        fig.add_bar(
            x=counts.index.to_numpy(),
            y=counts.to_numpy(),
            name=side,
            marker_color=color,
            width=width,
            opacity=0.6,
            hovertemplate=f"{side}: p_hat %{{x:.3f}}<br>%{{y:,}} queries<extra></extra>",
        )
    return _p_hat_bars(fig, title, "overlay")


def drift_heatmap(both: pd.DataFrame) -> go.Figure:
    """Mean change in p_hat per task (rows) and difficulty (columns): blue rose, red fell."""
    title = "difficulty drift: mean change in p_hat by task and difficulty"
    if both.empty:
        return _empty(title, "no queries in both profiles")
    mean, count = task_difficulty_grid(both, "change")
    z = mean.to_numpy()
    return _grid_figure(
        title,
        mean,
        go.Heatmap(
            z=z,
            zmin=-1,
            zmax=1,
            zmid=0,
            colorscale="RdBu",
            customdata=count.to_numpy(),
            colorbar=dict(title="Δ p_hat"),
            text=np.where(np.isnan(z), "", np.char.mod("%+.2f", np.nan_to_num(z))),
            hovertemplate="task %{y}, difficulty %{x}<br>mean change %{z:+.3f}<br>%{customdata:,} queries<extra></extra>",
        ),
    )
