"""Plotly figures of a run's groups (the Rollouts page): per-step outcomes, the hardest queries' pass rates,
one query's history with its p_hat marks, and the query x step success heatmap. Plain functions over what
sgpo.rollouts returns; long runs are downsampled (curves.curve) before they reach the browser, and the
heatmap is drawn at most rollouts.MATRIX_ROWS rows high. Axes of rates fit the data (run_figures.fit_range).
Model and dataset text never reaches a figure except query ids, escaped (plotly reads a few tags in text).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import curves
from dashboard.run_figures import empty_figure, fit_range, framed
from sgpo import rollouts

HARDEST_COLORS = {"hardest_10": "#b2182b", "hardest_25": "#ef8a62", "hardest_50": "#67a9cf", "pass_rate": "#555555"}
STATUS_COLORS = {"trained": "#2e86de", "skipped": "#9aa5b1", "dropped": "#d9d9d9"}
MARK_SYMBOLS = {"initial": "star", "checkpoint": "diamond"}


def _layout(fig: go.Figure, title: str, x: str, y: str, *, note: str = "", height: int = 340) -> go.Figure:
    framed(fig, title, note=note, height=height)
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def _rate_lines(frame: pd.DataFrame, columns: list[tuple[str, str, str, str]], smooth: float) -> list[go.Scatter]:
    """One smoothed line per (column, label, colour, dash), raw values faint behind, downsampled."""
    traces = []
    x = frame["step"].to_numpy(dtype=float)
    for col, label, color, dash in columns:
        if col not in frame or frame[col].isna().all():
            continue
        c = curves.curve(x, frame[col], smooth)
        hover = f"{label}<br>step %{{x:,.0f}}<br>%{{y:.1%}}<extra></extra>"
        if c["smooth"] is not None:
            traces.append(
                go.Scatter(
                    x=c["x"],
                    y=c["raw"],
                    mode="lines",
                    showlegend=False,
                    opacity=0.2,
                    hoverinfo="skip",
                    line=dict(color=color, width=1),
                )
            )
        traces.append(
            go.Scatter(
                x=c["x"],
                y=c["raw"] if c["smooth"] is None else c["smooth"],
                mode="lines",
                name=label,
                line=dict(color=color, width=2, dash=dash),
                hovertemplate=hover,
            )
        )
    return traces


def outcome_figure(summary: pd.DataFrame, smooth: float = 0.0) -> go.Figure:
    """The share of each step's groups that were all-correct and all-wrong (both teach nothing)."""
    title = "all-correct and all-wrong groups per step"
    if summary.empty:
        return empty_figure(title, "no groups stored for this run yet")
    traces = _rate_lines(
        summary,
        [("all_correct", "all correct", "#1a9850", "solid"), ("all_wrong", "all wrong", "#d73027", "solid")],
        smooth,
    )
    fig = _layout(go.Figure(traces), title, "training step", "share of the step's groups", note=_faint(smooth))
    values = summary[["all_correct", "all_wrong"]].to_numpy(dtype=float)
    return fig.update_yaxes(tickformat=".0%", range=fit_range(values))


def hardest_figure(summary: pd.DataFrame, basis: str, smooth: float = 0.0) -> go.Figure:
    """Each step's pass rate over its hardest 10%, 25% and 50% of queries, and over all of them (dotted)."""
    title = "pass rate of each step's hardest queries"
    if summary.empty:
        return empty_figure(title, "no groups stored for this run yet")
    columns = [
        (
            f"hardest_{round(share * 100)}",
            f"hardest {round(share * 100)}%",
            HARDEST_COLORS[f"hardest_{round(share * 100)}"],
        )
        for share in rollouts.HARDEST
    ]
    traces = _rate_lines(
        summary,
        [(c, label, color, "solid") for c, label, color in columns] + [("pass_rate", "all", "#555555", "dot")],
        smooth,
    )
    note = f"hardest {basis}" + (f" · {_faint(smooth)}" if smooth > 0 else "")
    fig = _layout(go.Figure(traces), title, "training step", "pass rate", note=note)
    values = summary[[c for c, _, _ in columns] + ["pass_rate"]].to_numpy(dtype=float)
    return fig.update_yaxes(tickformat=".0%", range=fit_range(values))


def _faint(smooth: float) -> str:
    return "faint: raw values" if smooth > 0 else ""


def history_figure(history: rollouts.History) -> go.Figure:
    """One query over training: each group's pass rate at its step (marker size: its G; colour: trained,
    skipped or dropped), the pass rate over its groups so far (line), and its p_hat in the initial profile
    (star, step 0) and in checkpoint profiles (diamonds, at their steps)."""
    query = html.escape(str(history.query.get("query_id", "?")))  # plotly reads tags in text: ids stay text
    title = f"query {query} over training"
    g, marks = history.groups, history.marks
    if g.empty and marks.empty:
        return empty_figure(title, "this query has no stored group in this run")
    fig = go.Figure()
    if len(g):
        so_far = g["successes"].cumsum() / g["group_size"].cumsum()
        fig.add_scatter(
            x=g["step"],
            y=so_far,
            mode="lines",
            name="pass rate so far",
            line=dict(color="#555555", width=1.5),
            hovertemplate="step %{x:,}<br>pass rate so far %{y:.1%}<extra></extra>",
        )
        for status, part in g.groupby("status", sort=False):
            fig.add_scatter(
                x=part["step"],
                y=part["pass_rate"],
                mode="markers",
                name=f"group ({status})",
                marker=dict(
                    color=STATUS_COLORS.get(str(status), "#2e86de"),
                    size=6 + 2 * np.log2(part["group_size"].to_numpy(dtype=float)),
                    line=dict(width=0.5, color="#333333"),
                ),
                customdata=np.stack([part["group_size"], part["successes"], part["phase"].fillna(-1)], axis=1),
                hovertemplate="step %{x:,}<br>%{customdata[1]} of %{customdata[0]} right (%{y:.0%})"
                "<br>phase %{customdata[2]}<extra></extra>",
            )
    for kind, part in marks.groupby("kind", sort=False):
        fig.add_scatter(
            x=part["step"],
            y=part["p_hat"],
            mode="markers",
            name=f"p_hat, {kind} profile",
            marker=dict(symbol=MARK_SYMBOLS.get(str(kind), "circle"), size=14, color="#8e44ad"),
            customdata=part[["profile"]].astype(str).map(html.escape).to_numpy(),
            hovertemplate="p_hat %{y:.3f} at step %{x:,}<br>profile %{customdata[0]}<extra></extra>",
        )
    fig = _layout(fig, title, "training step", "success rate", note="marker size: group size G")
    values = np.concatenate([g["pass_rate"].to_numpy(dtype=float), marks["p_hat"].to_numpy(dtype=float)])
    return fig.update_yaxes(tickformat=".0%", range=fit_range(values, floor_span=0.2))


def heatmap_figure(matrix: rollouts.Matrix, rows: int = rollouts.MATRIX_ROWS) -> go.Figure:
    """Success per query (rows, hardest at the top) and step bin (columns); more than `rows` queries are
    drawn as `rows` bands of neighbouring queries averaged (the title says so)."""
    title = "success per query and step"
    frame = matrix.frame
    if frame.empty:
        return empty_figure(title, "no groups stored for this run yet")
    labels = np.asarray([html.escape(str(q)) for q in frame.index], dtype=object)  # shown in hover as text
    z = frame.to_numpy(dtype=float)
    if len(frame) > rows:  # neighbouring queries (same order) averaged into bands
        edges = np.linspace(0, len(frame), rows + 1).astype(int)
        with np.errstate(invalid="ignore"):
            z = np.vstack(
                [np.nanmean(z[a:b], axis=0) if b > a else np.full(z.shape[1], np.nan) for a, b in zip(edges, edges[1:])]
            )
        labels = np.array([f"{labels[a]} … ({b - a} queries)" for a, b in zip(edges, edges[1:])], dtype=object)
        title += f" ({len(frame):,} queries in {rows:,} bands)"
    x = [int(c) for c in frame.columns]
    fig = go.Figure(
        go.Heatmap(
            z=z.astype(np.float32),
            x=x,
            y=list(range(len(labels))),
            customdata=np.repeat(labels[:, None], len(x), axis=1),
            zmin=0,
            zmax=1,
            colorscale="RdYlGn",
            colorbar=dict(title="pass rate", tickformat=".0%"),
            hovertemplate="%{customdata}<br>steps from %{x:,}<br>pass rate %{z:.0%}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    note = f"rows: queries by {matrix.order}, hardest first · columns: bins of {matrix.bin_steps:,} steps · blank: no group"
    return _layout(fig, title, "training step", "queries", note=note, height=min(900, 300 + len(labels)))
