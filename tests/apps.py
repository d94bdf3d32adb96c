"""Shared builders for the dashboard tests (no tests here): a store filled through the Store API with
synthetic profiles and runs, and an AppTest of the whole app pointed at it."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def app(page: str | None = None, **query):
    """A fresh AppTest of the whole app, run once, switched to views/<page>.py if given; `query` are URL
    query parameters the page opens with (lists for repeated ones)."""
    at = AppTest.from_file(APP, default_timeout=60)
    if page and query:  # straight to the page, as a shared link opens it
        at.switch_page(f"views/{page}.py")
        at.query_params.update(query)
        return at.run()
    at.run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    return at


def chart(at, key: str) -> dict:
    """The plotly figure of the chart with `key`, as the browser receives it."""
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id.endswith("-" + key)).proto.spec)


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def no_exception(at) -> None:
    assert not at.exception, [e.message for e in at.exception]


class Launched(list):
    """Stands in for sgpo.launch.detach (the one way a worker starts): records (argv, log) and starts nothing.
    The stand-in worker's pid is this process's, so a start shows as loading until its profile is written."""

    def __call__(self, argv, log):
        self.append((argv, Path(log)))
        return SimpleNamespace(pid=os.getpid())


class Started(list):
    """Stands in for sgpo.runs.start / resume: records (verb, run ref, detach) and starts no worker."""

    def __init__(self, verb):
        super().__init__()
        self.verb = verb

    def __call__(self, ref, store, *, detach=False, log=None):
        self.append((self.verb, ref, detach))
        run = store.find_run(ref)
        return {"run_id": run["id"], "run_name": run["name"], "pid": 0, "status": "started", "log_path": ""}


NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])")


def too_precise(token: str) -> bool:
    """A number written with more than four significant digits and no thousands separators."""
    if "," in token:
        return False  # a count written for people (12,345)
    digits = token.lstrip("+-").split("e")[0].replace(".", "").lstrip("0")
    return len(digits) > 4


def raw_numbers(at) -> list[str]:
    """What the page shows as a raw number: more than four significant digits in a metric, caption,
    markdown or message, or in a shown numeric table column that has no display format."""
    out = []
    texts = [(m.label, m.value) for m in at.metric] + [("delta", m.proto.delta) for m in at.metric]
    texts += [("caption", c.value) for c in at.caption] + [("markdown", m.value) for m in at.markdown]
    texts += [(kind, e.value) for kind in ("info", "warning", "success", "error") for e in getattr(at, kind)]
    for where, text in texts:
        out += [f"{where}: {t} in {text!r}" for t in NUMBER.findall(str(text).split("`")[0]) if too_precise(t)]
    for table in at.dataframe:
        frame, proto = table.value, table.proto
        formats = json.loads(proto.columns or "{}")
        shown = list(proto.column_order) or list(frame.columns)
        for col in shown:
            formatted = "format" in str(formats.get(col, {}))
            if col not in frame or formatted or not pd.api.types.is_numeric_dtype(frame[col]):
                continue
            for v in frame[col].dropna().tolist():
                if (
                    isinstance(v, (int, np.integer))
                    and abs(v) >= 10_000
                    or isinstance(v, (float, np.floating))
                    and float(f"{v:.4g}") != v
                ):
                    out.append(f"table column {col}: {v}")
                    break
    return out


def values(trace, axis):
    """A trace's array, whether plotly packed it as base64 `bdata` or left it a list."""
    v = trace[axis]
    if isinstance(v, dict) and "bdata" in v:
        out = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return out.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else out
    return np.asarray(v)
