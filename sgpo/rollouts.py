"""What each query learned: a run's groups step by step, and each query's success over training, read back
from the store (the trainer writes every step's groups with its metrics row: sgpo/train/recorder.py).

    from sgpo import rollouts
    rollouts.groups("sgpo-1", store, steps=(40, 40))          # one row per group of step 40: rewards, advantages
    rollouts.groups("sgpo-1", store, steps=(1, 40), outcome=["mixed"], band=["middle"])
    rollouts.samples(group)                                    # one group's completions, rewards, advantages
    rollouts.step_summary("sgpo-1", store).frame               # per step: all-correct / all-wrong shares and the
                                                               # pass rate of the hardest 10/25/50% of its queries
    rollouts.history("sgpo-1", "add-train-00001", store)       # one query's groups over training, p_hat marks
    rollouts.success_matrix("sgpo-1", store)                   # query x step success, learned and forgotten
    rollouts.search("sgpo-1", "4821+", store)                  # queries by id or prompt text
    rollouts.export(frame, "history.parquet")                  # CSV or Parquet, by the file's suffix

Words. A sample succeeds when its reward is above 0.5 (rewards are binary: 1.0 is a success). A group is
`all-correct`, `all-wrong` or `mixed`; it was `trained`, `skipped` (no advantage, left out of the backward
pass by our engine) or `dropped` (generated, then discarded: DAPO). A query's `p_hat` is its success rate under
the initial policy, from the run's profile (or, for a run without one, a profile of the same dataset and
model), and its `band` says where that leaves it (sgpo.vocab: solved, middle, unsolved; `unprofiled` when no
profile has it). Advantages are the trainer's: (r - group mean) / (group std + 1e-4), the std unbiased, or
r - mean when the run did not scale rewards.

What it costs. Every group of every step is kept (its rewards and completion lengths as compact JSON, a few
small integers, and an index by query that also serves summaries over a whole run), with the completion texts
of `keep_completions` groups a step (default 2). With the starter at the defaults (256 rollouts a step) that
measured 2.5 KB a step in groups of 8 (32 groups) and 6.2 KB a step in groups of 2 (128 groups, the most rows a
step of the default plan writes): at most STORE_BYTES_PER_STEP, 7 MB per 1,000 steps (the metrics row is about
0.9 KB a step), plus about 45 bytes once per query the run rolls out (its id, task and prompt; longer prompts
cost their length). Kept texts add their length: 2 groups of 8 completions of 500 characters would add 8 KB a
step, so keep_completions is the knob to turn down for long completions. tests/test_train_rollouts.py holds a
run of the starter to these bounds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sgpo import paths
from sgpo.errors import ConfigError, StoreError
from sgpo.store import Store
from sgpo.vocab import BANDS

OUTCOMES = ("all-correct", "mixed", "all-wrong")
STATUSES = ("trained", "skipped", "dropped")
UNPROFILED = "unprofiled"
HARDEST = (0.10, 0.25, 0.50)  # the hardest shares of a step's queries whose pass rate is charted
STD_EPS = 1e-4  # TRL's epsilon in (r - mean) / (std + eps), as sgpo/train/grpo.py uses it
MATRIX_BINS = 100  # step columns of the success matrix at most
MATRIX_ROWS = 1000  # query rows drawn at most (the matrix itself keeps every query)
STORE_BYTES_PER_STEP = 7_000  # the group tables' growth a step at the defaults, at most (measured 2.5-6.2 KB)
STORE_BYTES_PER_QUERY = 64  # run_queries' growth per query of the built-in tasks (measured 45 bytes)


# the run's queries and what the initial policy made of them ----------------------------------------------------
def initial_profile(run: dict, store: Store) -> dict | None:
    """The profile of the run's initial policy: the one it was planned from, else the newest finished profile
    of the same dataset and model (a GRPO baseline beside a profiled sGPO run); None when there is none."""
    if run.get("profile_id"):
        try:
            return store.find_profile(run["profile_id"])
        except StoreError:
            return None
    if not run.get("dataset_hash"):
        return None
    same = [
        p
        for p in store.profiles()
        if p.get("dataset_hash") == run["dataset_hash"]
        and p.get("model_hash") == run.get("model_hash")
        and p.get("status") == "done"
    ]
    return same[-1] if same else None


def band_of(p_hat) -> np.ndarray:
    """solved (p_hat 1), middle, unsolved (p_hat 0), or unprofiled (no p_hat), per query."""
    p = np.asarray(p_hat, dtype=float)
    out = np.where(p >= 1.0, BANDS[0], np.where(p <= 0.0, BANDS[2], BANDS[1])).astype(object)
    out[np.isnan(p)] = UNPROFILED
    return out


def queries(ref, store: Store) -> pd.DataFrame:
    """Every query the run has rolled out: query (dataset row), query_id, task, difficulty, prompt, and
    p_hat and band under the initial policy (initial_profile)."""
    run = store.find_run(ref)
    frame = store.run_queries_frame(run["id"])
    profile = initial_profile(run, store)
    p_hat = pd.Series(dtype=float)
    if profile is not None:
        pf = store.profile_frame(profile["id"])
        p_hat = pf.drop_duplicates("id").set_index("id")["p_hat"]
    frame["p_hat"] = frame["query_id"].map(p_hat).astype(float)
    frame["band"] = band_of(frame["p_hat"])
    frame.attrs["profile"] = profile["name"] if profile else None
    return frame


# a step's groups ------------------------------------------------------------------------------------------
def groups(
    ref,
    store: Store,
    *,
    steps: tuple[int, int] | None = None,
    query: str | None = None,
    task=None,
    band=None,
    outcome=None,
    status=None,
    texts: bool = True,
) -> pd.DataFrame:
    """The run's groups from steps[0] to steps[1] (default: its last step with groups), or every group of
    one `query` (its id): step, query_id, task, difficulty, p_hat, band, phase, group_size, successes,
    pass_rate, outcome, status, rewards, advantages, reward_mean, reward_std, lengths, completions (None
    where not kept), prompt. Filters (lists of allowed values; empty means all): task, band, outcome, status.

    >>> rollouts.groups("sgpo-1", store, steps=(40, 40), outcome=["mixed"])[["query_id", "rewards"]]
    """
    run = store.find_run(ref)
    known = queries(run["id"], store)
    if query is not None:
        hit = known[known["query_id"] == str(query)]
        if hit.empty:
            raise StoreError(f"run {run['name']!r} has no group of query {query!r}: `sgpo runs rollouts` lists them")
        frame = store.groups_frame(run["id"], query=int(hit["query"].iloc[0]), texts=texts)
    else:
        lo, hi = steps if steps is not None else ((store.group_steps(run["id"]) or (0, 0))[1],) * 2
        frame = store.groups_frame(run["id"], first_step=int(lo), last_step=int(hi), texts=texts)
    frame = described(frame, known, scale=bool((run.get("config") or {}).get("scale_rewards", True)))
    return filtered(frame, task=task, band=band, outcome=outcome, status=status)


def filtered(frame: pd.DataFrame, *, task=None, band=None, outcome=None, status=None) -> pd.DataFrame:
    """The groups whose task, band, outcome and status are among those allowed (empty or None: all)."""
    keep = pd.Series(True, index=frame.index)
    for column, allowed in (("task", task), ("band", band), ("outcome", outcome), ("status", status)):
        if allowed:
            keep &= frame[column].isin(list(allowed))
    return frame[keep].reset_index(drop=True)


def described(frame: pd.DataFrame, known: pd.DataFrame, *, scale: bool = True) -> pd.DataFrame:
    """Stored groups with what is read off them: pass rate, outcome, status, reward mean and std, advantages,
    and the query's p_hat, band and prompt (`known`: queries())."""
    out = frame.copy()
    size = out["group_size"].to_numpy(dtype=float)
    wins = out["successes"].to_numpy(dtype=float)
    out["pass_rate"] = np.divide(wins, size, out=np.zeros_like(wins), where=size > 0)
    out["outcome"] = np.where(wins >= size, OUTCOMES[0], np.where(wins <= 0, OUTCOMES[2], OUTCOMES[1]))
    out["status"] = np.where(
        out["dropped"].astype(bool), STATUSES[2], np.where(out["trained"].astype(bool), STATUSES[0], STATUSES[1])
    )
    stats = [_advantages(r, scale) for r in out["rewards"]]
    out["reward_mean"] = [m for m, _, _ in stats]
    out["reward_std"] = [s for _, s, _ in stats]
    out["advantages"] = [a for _, _, a in stats]
    extra = known.set_index("query")[["p_hat", "band", "prompt"]]
    out = out.join(extra, on="query")
    out["band"] = out["band"].fillna(UNPROFILED)
    return out


def _advantages(rewards, scale: bool) -> tuple[float, float, list[float]]:
    r = np.asarray(rewards, dtype=float)
    if not r.size:
        return float("nan"), float("nan"), []
    mean = float(r.mean())
    std = float(r.std(ddof=1)) if r.size > 1 else 0.0
    adv = (r - mean) / (std + STD_EPS) if scale else r - mean
    return mean, std, [round(float(a), 4) for a in adv]


def samples(group) -> pd.DataFrame:
    """One group (a row of groups()) as one row per sample: completion text (None where not kept), reward,
    advantage, completion length in tokens, success."""
    g = dict(group)
    rewards = list(g.get("rewards") or [])
    texts = g.get("completions") or [None] * len(rewards)
    lengths = g.get("lengths") or [None] * len(rewards)
    return pd.DataFrame(
        {
            "sample": range(1, len(rewards) + 1),
            "completion": texts,
            "reward": rewards,
            "advantage": g.get("advantages") or [None] * len(rewards),
            "tokens": lengths,
            "success": [float(r) > 0.5 for r in rewards],
        }
    )


def search(ref, text: str, store: Store, limit: int = 50) -> pd.DataFrame:
    """The run's queries whose id or prompt holds `text` (case-insensitive), up to `limit`.

    >>> rollouts.search("sgpo-1", "4821+", store)[["query_id", "prompt"]]
    """
    text = str(text or "").strip()
    return matching(queries(ref, store), text).head(limit if text else 0).reset_index(drop=True)


def matching(known: pd.DataFrame, text: str) -> pd.DataFrame:
    """The rows of `known` (queries()) whose id or prompt holds `text`, case-insensitive; all when it is empty."""
    text = str(text or "").strip()
    if not text:
        return known
    hit = pd.Series(False, index=known.index)
    for column in ("query_id", "prompt"):
        hit |= known[column].astype(str).str.contains(text, case=False, regex=False)
    return known[hit]


# per step ---------------------------------------------------------------------------------------------------------
@dataclass
class Summary:
    """Per step (`frame`): groups, all_correct and all_wrong (shares of the step's groups), pass_rate, and
    hardest_10 / hardest_25 / hardest_50: the pass rate of the step's hardest 10/25/50% of queries. `basis`
    says how hardness was judged: by the initial profile's p_hat, or by the run's own history (each query's
    successes in earlier steps, under a uniform prior, when no profile has the run's queries). A long run is
    summarised on every `every`-th step (the charts draw a few hundred points). `seen` carries the history, so
    a later call reads only the steps after `last_step`."""

    frame: pd.DataFrame
    basis: str
    last_step: int = 0
    seen: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["successes", "samples"], dtype=float))
    every: int = 1


SUMMARY_COLUMNS = ["step", "groups", "all_correct", "all_wrong", "pass_rate"] + [
    f"hardest_{round(share * 100)}" for share in HARDEST
]
SUMMARY_STEPS = 2000  # a run is summarised on at most about this many of its steps (summary_every)


def summary_every(last_step: int, steps: int = SUMMARY_STEPS) -> int:
    """Which steps a run of `last_step` steps is summarised on: every k-th, k the smallest power of two that
    keeps them to `steps` (powers of two, so a growing run's summary changes its stride seldom)."""
    k = 1
    while last_step > steps * k:
        k *= 2
    return k


def step_summary(ref, store: Store, *, since: Summary | None = None, every: int = 1) -> Summary:
    """Per-step outcomes and the hardest queries' pass rates (Summary), from the stored groups of every
    `every`-th step; with `since` (an earlier Summary of the same run and stride), only the steps written after
    it are read and added.

    >>> rollouts.step_summary("sgpo-1", store).frame[["step", "all_wrong", "hardest_10"]]
    """
    run = store.find_run(ref)
    known = queries(run["id"], store)
    profiled = known["p_hat"].notna().any()
    basis = (
        f"by p_hat under the initial policy (profile {known.attrs['profile']})"
        if profiled
        else "by the run's own history (each query's successes before the step, uniform prior)"
    )
    if every > 1:
        basis += f"; every {every}th step summarised"
    if since is not None and since.every != every:
        since = None
    after = since.last_step if since is not None else -1
    outcomes = store.group_outcomes(run["id"], after_step=after, every=every)
    seen = since.seen if since is not None else Summary(pd.DataFrame(), basis).seen
    if outcomes.empty:
        frame = since.frame if since is not None else pd.DataFrame(columns=SUMMARY_COLUMNS)
        return Summary(frame, basis, after if after > 0 else 0, seen, every)
    outcomes = outcomes[outcomes["dropped"] == 0]  # what DAPO discarded was not part of the step's batch
    size = outcomes["group_size"].to_numpy(dtype=float)
    wins = outcomes["successes"].to_numpy(dtype=float)
    if profiled:
        key = outcomes["query"].map(known.set_index("query")["p_hat"]).to_numpy(dtype=float)
    else:
        key, seen = _history_key(outcomes, seen)
    per = pd.DataFrame(
        {
            "step": outcomes["step"].to_numpy(),
            "query": outcomes["query"].to_numpy(),
            "size": size,
            "wins": wins,
            "key": key,
            "correct": (wins >= size).astype(float),
            "wrong": (wins <= 0).astype(float),
        }
    )
    by_step = per.groupby("step", sort=True)
    frame = pd.DataFrame(
        {
            "groups": by_step.size(),
            "all_correct": by_step["correct"].mean(),
            "all_wrong": by_step["wrong"].mean(),
            "pass_rate": by_step["wins"].sum() / by_step["size"].sum(),
        }
    )
    ranked = per.dropna(subset=["key"]).sort_values(["step", "key", "query"], kind="stable")
    rank = ranked.groupby("step").cumcount().to_numpy()
    count = ranked.groupby("step")["key"].transform("size").to_numpy()
    for share in HARDEST:
        hardest = ranked[rank < np.maximum(1, np.ceil(share * count))]
        sums = hardest.groupby("step")[["wins", "size"]].sum()
        frame[f"hardest_{round(share * 100)}"] = (sums["wins"] / sums["size"]).reindex(frame.index)
    frame = frame.reset_index()[SUMMARY_COLUMNS]
    if since is not None and len(since.frame):
        frame = pd.concat([since.frame, frame], ignore_index=True)
    return Summary(frame, basis, int(outcomes["step"].max()), seen, every)


def _history_key(outcomes: pd.DataFrame, seen: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Each group's query judged by its own earlier groups in the run: (successes + 1) / (samples + 2) over
    the steps before the group's (`seen`: the counts before these rows); the counts after these rows."""
    q = outcomes["query"].to_numpy()
    wins, size = outcomes["successes"].to_numpy(dtype=float), outcomes["group_size"].to_numpy(dtype=float)
    frame = pd.DataFrame({"step": outcomes["step"].to_numpy(), "query": q, "wins": wins, "size": size})
    step_totals = frame.groupby(["query", "step"], sort=True)[["wins", "size"]].sum()
    before = step_totals.groupby(level="query").cumsum() - step_totals  # this query's counts before each step
    base = seen.reindex(step_totals.index.get_level_values("query")).fillna(0.0).to_numpy()
    before = before + base
    prior = (before["wins"] + 1.0) / (before["size"] + 2.0)
    key = prior.reindex(pd.MultiIndex.from_arrays([q, frame["step"].to_numpy()])).to_numpy()
    totals = frame.groupby("query")[["wins", "size"]].sum().rename(columns={"wins": "successes", "size": "samples"})
    seen = totals.add(seen, fill_value=0.0) if len(seen) else totals
    return key, seen


# one query over training --------------------------------------------------------------------------------------
@dataclass
class History:
    """One query over a run: `query` (its id, task, prompt, p_hat, band), `groups` (every training group of
    it, step order) and `marks`: its p_hat in the run's initial profile (at step 0) and in profiles of the
    run's checkpoints (model run:NAME@STEP, at STEP)."""

    query: dict
    groups: pd.DataFrame
    marks: pd.DataFrame


def history(ref, query: str, store: Store) -> History:
    """Query `query` (its id) over the run: its groups, and its p_hat in the initial and checkpoint profiles.

    >>> h = rollouts.history("sgpo-1", "add-train-00001", store)
    >>> h.groups[["step", "group_size", "pass_rate", "status"]], h.marks
    """
    run = store.find_run(ref)
    known = queries(run["id"], store)
    row = known[known["query_id"] == str(query)]
    frame = groups(run["id"], store, query=str(query))
    marks = profile_marks(run, store, str(query))
    return History(row.iloc[0].to_dict() if len(row) else {"query_id": str(query)}, frame, marks)


def profile_marks(run: dict, store: Store, query_id: str) -> pd.DataFrame:
    """step, p_hat, profile, kind ("initial" or "checkpoint") of query `query_id` in the run's initial profile
    (step 0) and in every profile of one of its checkpoints (model run:NAME@STEP, or the checkpoint folder
    step-NNNNNN it was made from)."""
    rows = []
    initial = initial_profile(run, store)
    wanted = [(initial, 0, "initial")] if initial is not None else []
    for p in store.profiles():
        step = checkpoint_step(p, run["name"])
        if step is not None:
            wanted.append((p, step, "checkpoint"))
    for profile, step, kind in wanted:
        pf = store.profile_frame(profile["id"])
        hit = pf[pf["id"] == query_id]
        if len(hit):
            rows.append({"step": step, "p_hat": float(hit["p_hat"].iloc[0]), "profile": profile["name"], "kind": kind})
    return pd.DataFrame(rows, columns=["step", "p_hat", "profile", "kind"])


def checkpoint_step(profile: dict, run_name: str) -> int | None:
    """The step of run `run_name`'s checkpoint that `profile` was made from; None when it profiles another
    model."""
    spec = str(profile.get("model_spec") or "")
    if not paths.is_run_model(spec):
        return None
    try:
        name, step = paths.parse_run_model(spec)
    except ValueError:
        return None
    if name != run_name:
        return None
    if step is None:  # run:NAME, its latest checkpoint then: the folder it was made from says which
        folder = Path(str(profile.get("model_path") or "")).name
        step = int(folder[5:]) if folder.startswith("step-") and folder[5:].isdigit() else None
    return step


# every query over training ------------------------------------------------------------------------------------
@dataclass
class Matrix:
    """Success per query (rows, ordered by initial p_hat, hardest first) and step bin (columns: each bin's
    first step; bins of `bin_steps` steps): the pass rate of the query's groups in that bin, NaN where it had
    none. `queries`: per
    query id, task, p_hat, groups, start and end pass rates, change, and whether it was learned or forgotten.
    `order` says what the rows are ordered by."""

    frame: pd.DataFrame
    queries: pd.DataFrame
    order: str
    bin_steps: int


def success_matrix(ref, store: Store, *, bins: int = MATRIX_BINS, min_change: float = 0.5) -> Matrix:
    """Every query's success over training, in at most `bins` step bins (summed by the store; at least as wide
    as the steps it takes to roll out as many groups as the run has queries, so most cells hold one). A query's start
    is its initial p_hat (else its pass rate over the first half of the bins it has groups in), its end its pass
    rate over the last half of them; with at least two groups, it was learned when end - start >= min_change,
    forgotten when start - end >= min_change (a query in one bin and with no p_hat has no start).

    >>> m = rollouts.success_matrix("sgpo-1", store)
    >>> m.queries[m.queries["learned"]][["query_id", "start", "end"]]
    """
    if bins < 1:
        raise ConfigError(f"--bins {bins}: give at least 1 step bin")
    run = store.find_run(ref)
    known = queries(run["id"], store)
    steps = store.group_steps(run["id"])
    columns = ["query_id", "task", "p_hat", "groups", "start", "end", "change", "learned", "forgotten"]
    if steps is None:
        return Matrix(pd.DataFrame(), pd.DataFrame(columns=columns), "initial p_hat", 1)
    # bins wide enough that a query shows up in most of them: a step trains only some of the queries
    per_step = max(1, len(store.groups_frame(run["id"], first_step=steps[1], last_step=steps[1], texts=False)))
    width = max(1, -(-steps[1] // bins), -(-len(known) // per_step))
    cells = store.group_bins(run["id"], width)
    wins = cells.pivot(index="query", columns="bin", values="successes").sort_index(axis=1)
    samples = cells.pivot(index="query", columns="bin", values="samples").reindex_like(wins)
    s, n = wins.fillna(0).to_numpy(dtype=float), samples.fillna(0).to_numpy(dtype=float)
    has = n > 0
    k, count = has.cumsum(axis=1), has.sum(axis=1, keepdims=True)
    early, late = has & (k <= count // 2), has & (k > count // 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        first = (s * early).sum(axis=1) / (n * early).sum(axis=1)
        last = (s * late).sum(axis=1) / (n * late).sum(axis=1)
    info = known.set_index("query")
    per = pd.DataFrame(index=wins.index)
    per["query_id"] = info["query_id"].reindex(per.index)
    per["task"] = info["task"].reindex(per.index)
    per["p_hat"] = info["p_hat"].reindex(per.index)
    per["groups"] = cells.groupby("query")["groups"].sum().reindex(per.index)
    per["start"] = per["p_hat"].fillna(pd.Series(first, index=per.index))
    per["end"] = last
    per["change"] = per["end"] - per["start"]
    enough = per["groups"] >= 2  # one group says too little to call a query learned or forgotten
    per["learned"] = enough & (per["change"] >= min_change)
    per["forgotten"] = enough & (per["change"] <= -min_change)
    has_profile = per["p_hat"].notna().any()
    order_key = per["p_hat"] if has_profile else per["start"]
    ordered = per.assign(_k=order_key).sort_values(["_k", "query_id"], na_position="last", kind="stable")
    rate = (wins / samples).reindex(ordered.index)
    rate.index = ordered["query_id"].to_numpy()
    rate.columns = [int(b) * width + 1 for b in rate.columns]
    order = "initial p_hat" if has_profile else "pass rate over the first half of its groups' bins (no profile)"
    return Matrix(rate, ordered.drop(columns="_k").reset_index(drop=True), order, width)


def matrix_long(matrix: Matrix) -> pd.DataFrame:
    """The success matrix as one row per query and step bin that has groups: query_id, first_step, last_step,
    pass_rate (what the exports hold)."""
    if matrix.frame.empty:
        return pd.DataFrame(columns=["query_id", "first_step", "last_step", "pass_rate"])
    long = matrix.frame.rename_axis("query_id").reset_index().melt("query_id", var_name="first_step")
    long = long.dropna(subset=["value"]).rename(columns={"value": "pass_rate"})
    long["first_step"] = long["first_step"].astype(int)
    long["last_step"] = long["first_step"] + matrix.bin_steps - 1
    return long[["query_id", "first_step", "last_step", "pass_rate"]].reset_index(drop=True)


# exports ----------------------------------------------------------------------------------------------------------
EXPORT_SUFFIXES = (".csv", ".parquet")


def export(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` to `path` as CSV or Parquet (by its suffix), atomically (a temporary file renamed);
    list columns (rewards, advantages, completions) stay lists in Parquet and become JSON text in CSV."""
    path = Path(path)
    if path.suffix not in EXPORT_SUFFIXES:
        raise ConfigError(f"{path}: export to a .csv or .parquet file")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder: give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".csv":
        text_frame(frame).to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with list columns as JSON text (CSV cells and tables that show text)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, (list, tuple))).any():
            out[col] = out[col].map(lambda v: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, tuple)) else v)
    return out
