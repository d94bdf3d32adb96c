"""Plotly figure builders: plain functions from frames to figures, called by the pages and the tests.

Big tables are reduced before they reach plotly (a histogram is sent as bar counts, not 100,000
points), so a figure costs the same to draw whatever the dataset size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.analysis import accuracy_by_difficulty, phase_changes
from sgpo.vocab import DECISIONS

COLORS = {"trivial": "#9aa5b1", "learnable": "#2e86de", "unsolved_kept": "#e67e22",
          "unsolved_dropped": "#d9d9d9"}
FLOPS_BUCKETS = [("flops_profile", "profiling", "#8e44ad"), ("flops_rollout", "rollouts", "#2e86de"),
                 ("flops_train", "training", "#27ae60")]
MAX_BARS = 50


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height,
                      margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


MAX_PHASE_LABELS = 8  # beyond this many phase changes the lines stay, their labels would overlap


def _mark_phases(fig: go.Figure, changes: list[tuple[int, int]]) -> go.Figure:
    label = len(changes) <= MAX_PHASE_LABELS
    for step, phase in changes:
        fig.add_vline(x=step, line_dash="dot", line_color="#7f8c8d", line_width=1,
                      **({"annotation_text": f"phase {phase}", "annotation_position": "top left"} if label else {}))
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
    title = "p_hat under the initial policy, coloured by decision"
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
    fig.update_layout(barmode="stack")
    fig.update_xaxes(range=[-0.05, 1.05])
    return _layout(fig, title, "p_hat (successes / samples)", "queries")


def difficulty_heatmap(frame: pd.DataFrame) -> go.Figure:
    """Mean p_hat per task (rows) and difficulty level (columns); hover shows the query count."""
    title = "mean p_hat by task and difficulty"
    if frame.empty:
        return _empty(title, "no profiled queries yet")
    grouped = frame.groupby(["task", "difficulty"])["p_hat"]
    mean = grouped.mean().unstack("difficulty").sort_index(axis=1)
    count = grouped.size().unstack("difficulty").reindex_like(mean).fillna(0).astype(int)
    fig = go.Figure(go.Heatmap(
        z=mean.to_numpy(), x=[str(c) for c in mean.columns], y=[str(r) for r in mean.index],
        zmin=0, zmax=1, colorscale="Viridis", customdata=count.to_numpy(),
        text=np.where(np.isnan(mean.to_numpy()), "", np.round(mean.to_numpy(), 2).astype(str)),
        texttemplate="%{text}", colorbar=dict(title="p_hat"),
        hovertemplate="task %{y}, difficulty %{x}<br>mean p_hat %{z:.3f}<br>%{customdata} queries<extra></extra>"))
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
        fig.add_bar(y=["curriculum"], x=[width], base=[start], orientation="h", name=label,
                    marker_color=palette[i % len(palette)], text=[label], textposition="inside",
                    insidetextanchor="middle", hovertemplate=f"{label}<br>{width:,.0f} rollouts<extra></extra>")
        start += width
    fig.update_layout(barmode="overlay", showlegend=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "rollouts", "", height=160)


# train ---------------------------------------------------------------------------------------------
def _line(metrics: pd.DataFrame, columns: list[tuple[str, str]], title: str, y: str) -> go.Figure:
    present = [(c, n) for c, n in columns if c in metrics]
    if metrics.empty or not present:
        return _empty(title, "waiting for the first step")
    fig = go.Figure()
    for col, name in present:
        fig.add_scatter(x=metrics["step"], y=metrics[col], mode="lines", name=name)
    return _mark_phases(_layout(fig, title, "step", y), phase_changes(metrics))


def reward_figure(metrics: pd.DataFrame) -> go.Figure:
    return _line(metrics, [("reward_mean", "mean reward")], "reward", "mean reward")


def wasted_figure(metrics: pd.DataFrame) -> go.Figure:
    """Share of rollouts in zero-advantage groups: each step's own, and the run's so far."""
    fig = _line(metrics, [("step_wasted_fraction", "this step"), ("run_wasted_fraction", "run so far")],
                "wasted-rollout fraction", "rollouts in zero-advantage groups")
    return fig.update_yaxes(range=[0, 1.02]) if fig.data else fig


def informative_figure(metrics: pd.DataFrame) -> go.Figure:
    return _line(metrics, [("informative_groups", "informative groups"), ("groups", "all groups")],
                 "informative groups per step", "groups")


def flops_figure(metrics: pd.DataFrame) -> go.Figure:
    """Cumulative FLOPs stacked by bucket: profiling, rollout generation, training updates."""
    title = "cumulative FLOPs by bucket"
    present = [b for b in FLOPS_BUCKETS if b[0] in metrics]
    if metrics.empty or not present:
        return _empty(title, "waiting for the first step")
    fig = go.Figure()
    for col, name, color in present:
        fig.add_scatter(x=metrics["step"], y=metrics[col], mode="lines", name=name, stackgroup="flops",
                        line_color=color)
    return _mark_phases(_layout(fig, title, "step", "FLOPs"), phase_changes(metrics))


def accuracy_figure(evals: pd.DataFrame, metrics: pd.DataFrame | None = None) -> go.Figure:
    """Held-out accuracy per difficulty level (and overall, dashed) against step."""
    title = "held-out accuracy by difficulty"
    if evals.empty:
        return _empty(title, "no evaluation yet")
    fig = go.Figure()
    long = accuracy_by_difficulty(evals)
    for level, part in long.groupby("difficulty", sort=False):
        fig.add_scatter(x=part["step"], y=part["accuracy"], mode="lines+markers", name=f"difficulty {level}")
    fig.add_scatter(x=evals["step"], y=evals["accuracy"], mode="lines+markers", name="overall",
                    line=dict(color="black", dash="dash"))
    fig.update_yaxes(range=[0, 1.02])
    return _mark_phases(_layout(fig, title, "step", "accuracy"),
                        phase_changes(metrics) if metrics is not None else [])


# compare -------------------------------------------------------------------------------------------
def accuracy_vs_flops(evals: dict[str, pd.DataFrame]) -> go.Figure:
    """Held-out accuracy against total FLOPs (profiling included), one line per run."""
    title = "held-out accuracy against total FLOPs (profiling included)"
    if not any(len(e) for e in evals.values()):
        return _empty(title, "no evaluations in the chosen runs")
    fig = go.Figure()
    for name, e in evals.items():
        if len(e):
            e = e.sort_values("flops_total")
            fig.add_scatter(x=e["flops_total"], y=e["accuracy"], mode="lines+markers", name=name)
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, title, "total FLOPs", "accuracy")


def wasted_vs_step(metrics: dict[str, pd.DataFrame]) -> go.Figure:
    """Each run's wasted-rollout fraction so far (run_wasted_fraction)."""
    title = "wasted-rollout fraction against step (run so far)"
    shown = {n: m for n, m in metrics.items() if "run_wasted_fraction" in m}
    if not shown:
        return _empty(title, "no training steps in the chosen runs")
    fig = go.Figure()
    for name, m in shown.items():
        fig.add_scatter(x=m["step"], y=m["run_wasted_fraction"], mode="lines", name=name)
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, title, "step", "wasted fraction")
