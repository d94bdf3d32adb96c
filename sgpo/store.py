"""The SQLite store: datasets, profiles, plans, runs, metrics and events, through sqlite-utils.

    store = Store("runs/sgpo.db")      # or Store.default(): $SGPO_DB, else ./runs/sgpo.db
    store.profile_frame(profile_id)     # one row per query, as the planner wants it

WAL mode, so a trainer can write while dashboards read. The schema is versioned with
`PRAGMA user_version`; `MIGRATIONS[i]` takes a database from version i to i + 1. Every multi-row
write happens inside one transaction, so a killed process never leaves half a batch behind.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from sgpo.errors import ConfigError, StoreError

DEFAULT_PATH = Path("runs") / "sgpo.db"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_path(db: str | os.PathLike | None = None) -> Path:
    """The store a command works on: `db` if given, else $SGPO_DB, else ./runs/sgpo.db (absolute)."""
    return Path(db or os.environ.get("SGPO_DB") or DEFAULT_PATH).expanduser().resolve()


def check_name(name: str, kind: str, option: str = "--name") -> str:
    """A profile, plan or run name: 1-64 letters, digits, '.', '_' or '-', not only digits (those are ids)."""
    name = str(name).strip()
    if not NAME_PATTERN.match(name) or name.isdigit():
        raise ConfigError(
            f"{option} {name!r}: a {kind} name is 1-64 letters, digits, '.', '_' or '-', starts with "
            f"a letter or digit and is not only digits (numbers are ids)"
        )
    return name


def _v1(db: sqlite_utils.Database) -> None:
    db.table("datasets").create(
        {"hash": str, "spec": str, "path": str, "rows": int, "fields": str, "created": float}, pk="hash"
    )
    db.table("profiles").create(
        {
            "id": int,
            "name": str,
            "key": str,
            "status": str,
            "dataset_hash": str,
            "dataset_spec": str,
            "model_spec": str,
            "model_path": str,
            "model_hash": str,
            "n_params": int,
            "backend": str,
            "samples": int,
            "temperature": float,
            "max_new_tokens": int,
            "seed": int,
            "batch_size": int,
            "query_limit": int,
            "queries_total": int,
            "queries_done": int,
            "tokens_prompt": int,
            "tokens_completion": int,
            "flops": float,
            "seconds": float,
            "created": float,
            "updated": float,
        },
        pk="id",
        not_null={"name", "key", "status"},
    )
    db.table("profiles").create_index(["name"], unique=True)
    db.table("profiles").create_index(["key"])
    db.table("profile_queries").create(
        {
            "profile_id": int,
            "position": int,
            "query_id": str,
            "task": str,
            "difficulty": int,
            "samples": int,
            "successes": int,
            "p_hat": float,
            "prompt_tokens": int,
            "completion_tokens_total": int,
            "completion_tokens_mean": float,
            "examples": str,
        },
        pk=("profile_id", "position"),
        foreign_keys=[("profile_id", "profiles", "id")],
    )
    db.table("plans").create(
        {"id": int, "name": str, "profile_id": int, "config": str, "counts": str, "forecast": str, "created": float},
        pk="id",
        foreign_keys=[("profile_id", "profiles", "id")],
    )
    db.table("plans").create_index(["name"], unique=True)
    db.table("runs").create(
        {
            "id": int,
            "name": str,
            "strategy": str,
            "status": str,
            "pid": int,
            "config": str,
            "profile_id": int,
            "dataset_hash": str,
            "model_hash": str,
            "step": int,
            "created": float,
            "updated": float,
            "finished": float,
            "result": str,
            "log_path": str,
        },
        pk="id",
        not_null={"name", "strategy", "status"},
    )
    db.table("runs").create_index(["name"], unique=True)
    db.table("metrics").create(
        {"run_id": int, "step": int, "phase": int, "wall_seconds": float, "data": str},
        pk=("run_id", "step"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("evals").create(
        {"run_id": int, "step": int, "flops_total": float, "accuracy": float, "data": str},
        pk=("run_id", "step"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db.table("events").create({"id": int, "run_id": int, "kind": str, "message": str, "created": float}, pk="id")


# v2: one metric vocabulary (sgpo/vocab.py). What v1 stores hold under older names is renamed in place.
V2_METRIC_NAMES = {
    "rollouts_wasted": "wasted_rollouts",
    "groups_informative": "informative_groups",
    "rollouts_wasted_total": "wasted_rollouts_total",
    "wasted_fraction": "run_wasted_fraction",
}
V2_FORECAST_NAMES = {
    "informative_fraction": "forecast_informative_fraction",
    "wasted_fraction": "forecast_wasted_fraction",
    "wasted_rollouts": "expected_wasted_rollouts",
}


def _renamed(data: dict, names: dict) -> dict:
    return {names.get(k, k): v for k, v in data.items()}


def _v2(db: sqlite_utils.Database) -> None:
    """Metric names of the vocabulary; step fractions stored with each step; runs keep their plan;
    profiles record the pid of the process writing them (so a dead one shows as interrupted)."""
    db.table("runs").add_column("plan", str)
    db.table("profiles").add_column("pid", int)
    conn = db.conn
    for rowid, raw in conn.execute("SELECT rowid, data FROM metrics").fetchall():
        data = _renamed(json.loads(raw), V2_METRIC_NAMES)
        if data.get("rollouts"):
            data["step_wasted_fraction"] = data.get("wasted_rollouts", 0) / data["rollouts"]
        if data.get("groups"):
            data["step_informative_fraction"] = data.get("informative_groups", 0) / data["groups"]
        conn.execute("UPDATE metrics SET data = ? WHERE rowid = ?", [json.dumps(data), rowid])
    for rowid, raw in conn.execute("SELECT rowid, result FROM runs WHERE result IS NOT NULL").fetchall():
        conn.execute(
            "UPDATE runs SET result = ? WHERE rowid = ?",
            [json.dumps(_renamed(json.loads(raw), V2_METRIC_NAMES)), rowid],
        )
    for rowid, raw in conn.execute("SELECT rowid, forecast FROM plans").fetchall():
        forecast = json.loads(raw)
        for side in ("plan", "baseline"):
            if isinstance(forecast.get(side), dict):
                forecast[side] = _renamed(forecast[side], V2_FORECAST_NAMES)
        conn.execute("UPDATE plans SET forecast = ? WHERE rowid = ?", [json.dumps(forecast), rowid])


def _v3(db: sqlite_utils.Database) -> None:
    """Profiles record the settings they were made with (the ProfileConfig and the dataset's field options,
    JSON), so `sgpo profile resume` continues one with them."""
    db.table("profiles").add_column("settings", str)


def _v4(db: sqlite_utils.Database) -> None:
    """Datasets keep the field mapping and reward they were loaded with (sgpo.data_spec.DatasetSpec, JSON),
    so every later command loads them the same way without the options repeated."""
    db.table("datasets").add_column("mapping", str)


def _v5(db: sqlite_utils.Database) -> None:
    """Rollouts: one row per group of every training step (rollout_groups: the query, its rewards and
    completion lengths, whether it was informative and trained, skipped or dropped; the full completion texts
    for the few groups a step the run keeps them for), and the queries a run trained on (run_queries: id,
    task, difficulty, prompt; written the first time a query is rolled out). WITHOUT ROWID: rows live in the
    primary key's tree, which is what every read walks."""
    db.execute(
        """CREATE TABLE rollout_groups (
            run_id INTEGER NOT NULL REFERENCES runs(id), step INTEGER NOT NULL, slot INTEGER NOT NULL,
            query INTEGER NOT NULL, phase INTEGER, group_size INTEGER NOT NULL, successes INTEGER NOT NULL,
            informative INTEGER NOT NULL, trained INTEGER NOT NULL, dropped INTEGER NOT NULL,
            rewards TEXT NOT NULL, lengths TEXT, completions TEXT,
            PRIMARY KEY (run_id, step, slot)) WITHOUT ROWID"""
    )
    # a query's groups in step order, and what summaries over a whole run read, without the JSON pages
    db.execute(
        "CREATE INDEX rollout_groups_query ON rollout_groups (run_id, query, step, group_size, successes, dropped)"
    )
    db.execute(
        """CREATE TABLE run_queries (
            run_id INTEGER NOT NULL REFERENCES runs(id), query INTEGER NOT NULL, query_id TEXT, task TEXT,
            difficulty INTEGER, prompt TEXT, PRIMARY KEY (run_id, query)) WITHOUT ROWID"""
    )


def _v6(db: sqlite_utils.Database) -> None:
    """Runs keep how their held-out set was chosen (sgpo.data_split: a split of the training data with its
    share, seed and a digest of the ids held out, --eval-dataset, or builtin:eval; JSON), so a resumed run is
    evaluated on the same queries and never trains on them."""
    db.table("runs").add_column("held_out", str)


MIGRATIONS = [_v1, _v2, _v3, _v4, _v5, _v6]
SCHEMA_VERSION = len(MIGRATIONS)


class Store:
    """One SQLite database. Cheap to open; open one per thread or process. `readonly=True` opens it with
    SQLite's mode=ro: reads work, and a write through any method raises StoreError."""

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH, *, readonly: bool = False):
        self.path = Path(path)
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.path.exists():
                raise StoreError(
                    f"database {self.path} does not exist: profile a dataset first "
                    f"(sgpo profile builtin:train --model starter)"
                )
            # read-only at the SQLite level: every write, through any method, fails (a non-main rank's store)
            target, uri = (self.path.resolve().as_uri() + "?mode=ro", True) if readonly else (str(self.path), False)
            conn = sqlite3.connect(target, uri=uri, timeout=10, check_same_thread=False)
            self.db = sqlite_utils.Database(conn)
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate(readonly)
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot open the database {self.path}: {exc}; pass a writable path with --db or SGPO_DB"
            ) from None

    @classmethod
    def default(cls, path: str | os.PathLike | None = None, **kw) -> Store:
        return cls(default_path(path), **kw)

    def _migrate(self, readonly: bool) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema v{version}, newer than this sgpo (v{SCHEMA_VERSION}): upgrade sgpo"
            )
        if version == SCHEMA_VERSION:
            return
        if readonly:
            raise StoreError(f"database {self.path} needs a schema upgrade; open it once without read-only")
        with self.transaction():
            for step in MIGRATIONS[version:]:
                step(self.db)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self):
        """All writes inside commit together or not at all."""
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield self.db
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(
                f"could not write to {self.path}: {exc} (read-only file or locked by another process?)"
            ) from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.conn.close()

    # names ---------------------------------------------------------------------------------
    NAMED = {"profile": "profiles", "plan": "plans", "run": "runs"}  # kind of thing -> its table

    def check_new_name(self, kind: str, name: str, option: str = "--name") -> str:
        """The one check of a new profile, plan or run name: valid (check_name) and held by no other `kind`
        of this store; StoreError naming `option` otherwise. Returns the name, stripped.

            store.check_new_name("plan", "easy-first", "--save")"""
        name = check_name(name, kind, option)
        self._refuse_taken(kind, name, option)
        return name

    def _refuse_taken(self, kind: str, name: str, option: str = "--name") -> None:
        if list(self.db.table(self.NAMED[kind]).rows_where("name = ?", [name], limit=1)):
            raise StoreError(self._taken(kind, name, option))

    def _taken(self, kind: str, name: str, option: str) -> str:
        hint = f", or continue that run with `sgpo runs resume {name}`" if kind == "run" else ""
        return f"a {kind} named {name!r} already exists in {self.path}: choose another {option}{hint}"

    def _by_id_or_name(self, table: str, ref: str | int) -> list[dict]:
        """Rows of `table` whose id is `ref` (when it is a number), else whose name is `ref`."""
        rows = []
        if isinstance(ref, int) or str(ref).isdigit():
            rows = list(self.db.table(table).rows_where("id = ?", [int(ref)]))
        return rows or list(self.db.table(table).rows_where("name = ?", [str(ref)]))

    # datasets ------------------------------------------------------------------------------
    def record_dataset(
        self, *, hash: str, spec: str, path: str, rows: int, fields: list[str], mapping: dict | None = None
    ) -> None:
        """A dataset by its content hash; `mapping` (DatasetSpec.to_dict(): checked spec, fields, reward) is
        what later loads read back (`dataset_mapping`). `store.record_dataset(**dataset.record())`."""
        row = {"hash": hash, "spec": spec, "path": path, "rows": rows, "fields": json.dumps(fields)}
        if mapping is not None:
            row["mapping"] = json.dumps(mapping)
        with self.transaction():
            self.db.table("datasets").upsert({**row, "created": time.time()}, pk="hash")

    def dataset_mapping(self, *, hash: str | None = None, spec: str | None = None) -> dict | None:
        """The mapping recorded with a dataset: by content hash, or the latest recorded for a checked spec
        (sgpo.data.check_spec: an absolute path, builtin:NAME or hf:...); None when none was recorded."""
        where, args = ("hash = ?", [hash]) if hash is not None else ("json_extract(mapping, '$.spec') = ?", [spec])
        rows = self.db.execute(
            f"SELECT mapping FROM datasets WHERE mapping IS NOT NULL AND {where} ORDER BY created DESC LIMIT 1", args
        ).fetchall()
        return json.loads(rows[0][0]) if rows else None

    # profiles ------------------------------------------------------------------------------
    def find_profile(self, ref: str | int) -> dict:
        """A profile by id or name; StoreError naming what was asked for when absent."""
        rows = self._by_id_or_name("profiles", ref)
        if not rows:
            raise StoreError(f"no profile {ref!r} in {self.path}: `sgpo profile list` shows what is there")
        return rows[0]

    def profiles(self) -> list[dict]:
        return list(self.db.table("profiles").rows_where(order_by="id"))

    def profile_by_key(self, key: str) -> dict | None:
        rows = list(self.db.table("profiles").rows_where("key = ?", [key], order_by="id desc", limit=1))
        return rows[0] if rows else None

    def create_profile(self, row: dict) -> int:
        self._refuse_taken("profile", row["name"])
        now = time.time()
        with self.transaction():
            return _inserted_id(self.db.table("profiles").insert({**row, "created": now, "updated": now}))

    def add_profile_batch(self, profile_id: int, query_rows: list[dict], totals: dict[str, Any]) -> None:
        """Store a batch of per-query results and the profile's new running totals, atomically."""
        with self.transaction():
            self.db.table("profile_queries").insert_all(
                [{**r, "profile_id": profile_id} for r in query_rows], pk=("profile_id", "position")
            )
            self.db.table("profiles").update(profile_id, {**totals, "updated": time.time()})

    def update_profile(self, profile_id: int, **fields) -> None:
        with self.transaction():
            self.db.table("profiles").update(profile_id, {**fields, "updated": time.time()})

    def profiled_positions(self, profile_id: int) -> set[int]:
        rows = self.db.execute("SELECT position FROM profile_queries WHERE profile_id = ?", [profile_id])
        return {r[0] for r in rows}

    def profile_frame(self, profile_id: int, *, examples: bool = False) -> pd.DataFrame:
        """One row per profiled query, in dataset order, with the columns the planner reads."""
        cols = (
            "position, query_id AS id, task, difficulty, samples, successes, p_hat, prompt_tokens, "
            "completion_tokens_total, completion_tokens_mean" + (", examples" if examples else "")
        )
        df = pd.read_sql_query(
            f"SELECT {cols} FROM profile_queries WHERE profile_id = ? ORDER BY position",
            self.db.conn,
            params=[profile_id],
        )
        if examples:
            df["examples"] = df["examples"].map(json.loads)
        return df

    # plans ---------------------------------------------------------------------------------
    def save_plan(self, *, name: str, profile_id: int, config: dict, counts: dict, forecast: dict) -> int:
        self._refuse_taken("plan", name, "name")
        with self.transaction():
            return _inserted_id(
                self.db.table("plans").insert(
                    {
                        "name": name,
                        "profile_id": profile_id,
                        "config": json.dumps(config),
                        "counts": json.dumps(counts),
                        "forecast": json.dumps(forecast, default=float),
                        "created": time.time(),
                    }
                )
            )

    def find_plan(self, ref: str | int) -> dict:
        rows = self._by_id_or_name("plans", ref)
        if not rows:
            raise StoreError(f"no plan {ref!r} in {self.path}")
        row = rows[0]
        return {**row, **{k: json.loads(row[k]) for k in ("config", "counts", "forecast")}}

    def plans(self) -> list[dict]:
        return list(self.db.table("plans").rows_where(order_by="id"))

    # runs ----------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        name: str,
        strategy: str,
        config: dict,
        plan: dict | None = None,
        held_out: dict | None = None,
        **fields,
    ) -> int:
        """A run row in status `created`; `plan` is the plan it will train (phases included), stored once;
        `held_out` how its held-out set was chosen (sgpo.data_split.Split.record)."""
        now = time.time()
        if plan is not None:
            fields["plan"] = json.dumps(plan, default=float)
        if held_out is not None:
            fields["held_out"] = json.dumps(held_out, default=float)
        try:
            with self.transaction():
                return _inserted_id(
                    self.db.table("runs").insert(
                        {
                            "name": name,
                            "strategy": strategy,
                            "status": "created",
                            "config": json.dumps(config, default=str),
                            "step": 0,
                            "created": now,
                            "updated": now,
                            **fields,
                        }
                    )
                )
        except sqlite3.IntegrityError:
            raise StoreError(self._taken("run", name, "--name")) from None

    def find_run(self, ref: str | int) -> dict:
        rows = self._by_id_or_name("runs", ref)
        if not rows:
            raise StoreError(f"no run {ref!r} in {self.path}: `sgpo runs` lists the runs")
        row = rows[0]
        return {
            **row,
            "config": json.loads(row["config"] or "{}"),
            "result": json.loads(row["result"]) if row.get("result") else None,
            "plan": json.loads(row["plan"]) if row.get("plan") else None,
            "held_out": json.loads(row["held_out"]) if row.get("held_out") else None,
        }

    def runs(self) -> list[dict]:
        return list(self.db.table("runs").rows_where(order_by="id"))

    RUN_TABLES = ("metrics", "evals", "events", "rollout_groups", "run_queries")  # rows that belong to a run

    def delete_run(self, run_id: int) -> None:
        """Remove a run and every row of it, in one transaction (a benchmark redoing a half-done run; its
        checkpoints on disk are the caller's to remove)."""
        with self.transaction():
            for table in self.RUN_TABLES:
                self.db.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            self.db.conn.execute("DELETE FROM runs WHERE id = ?", [run_id])

    def update_run(self, run_id: int, **fields) -> None:
        if "result" in fields and not isinstance(fields["result"], str):
            fields["result"] = json.dumps(fields["result"], default=float)
        with self.transaction():
            self.db.table("runs").update(run_id, {**fields, "updated": time.time()})

    def log_step(
        self,
        run_id: int,
        step: int,
        phase: int,
        wall_seconds: float,
        data: dict,
        eval_row: dict | None = None,
        *,
        groups: list[dict] | None = None,
        queries: list[dict] | None = None,
    ) -> None:
        """One training step's metrics (and its eval, if any) with the run's cursor, atomically; with `groups`,
        the step's groups and the queries first seen in them in the same transaction (write_groups).

        Replacing by (run_id, step) means a step re-done after a crash overwrites, never duplicates."""
        with self.transaction():
            if groups is not None:
                self._write_groups(run_id, step, groups, queries or [])
            self.db.table("metrics").upsert(
                {
                    "run_id": run_id,
                    "step": step,
                    "phase": phase,
                    "wall_seconds": wall_seconds,
                    "data": json.dumps(data, default=float),
                },
                pk=("run_id", "step"),
            )
            if eval_row is not None:  # {"flops_total", "accuracy", "data": {...}}
                self.db.table("evals").upsert(
                    {
                        **eval_row,
                        "run_id": run_id,
                        "step": step,
                        "data": json.dumps(eval_row.get("data", {}), default=float),
                    },
                    pk=("run_id", "step"),
                )
            self.db.table("runs").update(run_id, {"step": step, "updated": time.time()})

    # rollouts (sgpo/rollouts.py reads them) ------------------------------------------------------
    def log_groups(self, run_id: int, step: int, groups: list[dict], queries: list[dict] | None = None) -> None:
        """A step's groups on their own (SgpoCallback runs, whose metrics row is written apart), atomically."""
        with self.transaction():
            self._write_groups(run_id, step, groups, queries or [])

    def _write_groups(self, run_id: int, step: int, groups: list[dict], queries: list[dict]) -> None:
        """The step's groups replace any stored for it (a replayed step never duplicates); each group is
        {query, phase, rewards, successes, informative, trained, dropped, lengths, completions (or None)};
        numbers are written as compact JSON (1 rather than 1.0). Queries are written once per run."""
        conn = self.db.conn
        conn.execute("DELETE FROM rollout_groups WHERE run_id = ? AND step = ?", [run_id, step])
        conn.executemany(
            "INSERT INTO rollout_groups (run_id, step, slot, query, phase, group_size, successes, informative, "
            "trained, dropped, rewards, lengths, completions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    step,
                    slot,
                    int(g["query"]),
                    g.get("phase"),
                    len(g["rewards"]),
                    int(g["successes"]),
                    int(bool(g["informative"])),
                    int(bool(g["trained"])),
                    int(bool(g.get("dropped"))),
                    _compact(g["rewards"]),
                    _compact(g["lengths"]) if g.get("lengths") is not None else None,
                    json.dumps(g["completions"], ensure_ascii=False) if g.get("completions") is not None else None,
                )
                for slot, g in enumerate(groups)
            ],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO run_queries (run_id, query, query_id, task, difficulty, prompt) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (run_id, int(q["query"]), q.get("query_id"), q.get("task"), q.get("difficulty"), q.get("prompt"))
                for q in queries
            ],
        )

    def groups_frame(
        self,
        run_id: int,
        *,
        first_step: int = 0,
        last_step: int | None = None,
        query: int | None = None,
        texts: bool = True,
    ) -> pd.DataFrame:
        """The run's groups from `first_step` to `last_step` (or of one `query`), in step and generation order,
        with the query's id, task and difficulty: rewards and lengths as lists, completions as a list of texts
        (None where not kept; left out with texts=False)."""
        where, args = "g.run_id = ? AND g.step >= ?", [run_id, first_step]
        if last_step is not None:
            where, args = where + " AND g.step <= ?", [*args, last_step]
        if query is not None:
            where, args = where + " AND g.query = ?", [*args, int(query)]
        df = pd.read_sql_query(
            "SELECT g.step, g.slot, g.query, q.query_id, q.task, q.difficulty, g.phase, g.group_size, g.successes, "
            "g.informative, g.trained, g.dropped, g.rewards, g.lengths" + (", g.completions" if texts else "") + " "
            "FROM rollout_groups g LEFT JOIN run_queries q ON q.run_id = g.run_id AND q.query = g.query "
            f"WHERE {where} ORDER BY g.step, g.slot",
            self.db.conn,
            params=args,
        )
        for col in ("rewards", "lengths", "completions"):
            if col in df:
                df[col] = [json.loads(v) if isinstance(v, str) else None for v in df[col]]
        return df

    def group_outcomes(self, run_id: int, *, after_step: int = -1, every: int = 1) -> pd.DataFrame:
        """step, query, group_size, successes, trained, dropped of every group after `after_step` (of every
        `every`-th step only): what summaries over a whole run read, without the JSON columns."""
        every_clause = " AND step % ? = 0" if every > 1 else ""
        return pd.read_sql_query(
            "SELECT step, slot, query, group_size, successes, trained, dropped FROM rollout_groups "
            f"WHERE run_id = ? AND step > ?{every_clause} ORDER BY step, slot",
            self.db.conn,
            params=[run_id, after_step, *([every] if every > 1 else [])],
        )

    def group_steps(self, run_id: int) -> tuple[int, int] | None:
        """(first, last) step with groups stored (two lookups in the primary key); None when none has."""
        row = self.db.execute(
            "SELECT (SELECT MIN(step) FROM rollout_groups WHERE run_id = ?), "
            "(SELECT MAX(step) FROM rollout_groups WHERE run_id = ?)",
            [run_id, run_id],
        ).fetchone()
        return (int(row[0]), int(row[1])) if row[0] is not None else None

    def group_bins(self, run_id: int, width: int) -> pd.DataFrame:
        """query, bin (steps (bin * width) + 1 .. (bin + 1) * width), successes, samples and groups of the
        run's groups that were not dropped, summed per query and bin (read from the covering index)."""
        return pd.read_sql_query(
            "SELECT query, (step - 1) / ? AS bin, SUM(successes) AS successes, SUM(group_size) AS samples, "
            "COUNT(*) AS groups FROM rollout_groups WHERE run_id = ? AND dropped = 0 GROUP BY query, bin",
            self.db.conn,
            params=[max(1, int(width)), run_id],
        )

    def run_queries_frame(self, run_id: int) -> pd.DataFrame:
        """query (dataset row), query_id, task, difficulty, prompt of every query the run has rolled out."""
        return pd.read_sql_query(
            "SELECT query, query_id, task, difficulty, prompt FROM run_queries WHERE run_id = ? ORDER BY query",
            self.db.conn,
            params=[run_id],
        )

    def table_bytes(self, *names: str) -> int:
        """Bytes the named tables and indexes fill in the database file (SQLite's dbstat: pages in use, less
        their unused space): how the store's growth is measured."""
        marks = ", ".join("?" for _ in names)
        row = self.db.execute(
            f"SELECT SUM(pgsize - unused) FROM dbstat WHERE name IN ({marks})", list(names)
        ).fetchone()
        return int(row[0] or 0)

    def metrics_frame(self, run_id: int, after_step: int = -1) -> pd.DataFrame:
        df = pd.read_sql_query(
            "SELECT step, phase, wall_seconds, data FROM metrics WHERE run_id = ? AND step > ? ORDER BY step",
            self.db.conn,
            params=[run_id, after_step],
        )
        return _expand(df)

    def evals_frame(self, run_id: int) -> pd.DataFrame:
        df = pd.read_sql_query(
            "SELECT step, flops_total, accuracy, data FROM evals WHERE run_id = ? ORDER BY step",
            self.db.conn,
            params=[run_id],
        )
        return _expand(df)

    def event(self, run_id: int | None, kind: str, message: str) -> None:
        with self.transaction():
            self.db.table("events").insert({"run_id": run_id, "kind": kind, "message": message, "created": time.time()})

    def events(self, run_id: int | None = None, limit: int = 100) -> list[dict]:
        where, args = ("run_id = ?", [run_id]) if run_id is not None else (None, [])
        return list(self.db.table("events").rows_where(where, args, order_by="id desc", limit=limit))[::-1]


def _inserted_id(table: sqlite_utils.db.Table) -> int:
    """The id of the row `table.insert` just wrote (sqlite-utils types last_pk as None until an insert)."""
    assert table.last_pk is not None
    return table.last_pk


def _compact(values) -> str:
    """A list of numbers as short JSON: whole numbers without '.0', others at 6 significant digits."""
    out = []
    for v in values:
        v = float(v)
        out.append(str(int(v)) if v.is_integer() else f"{v:.6g}" if v == v else "null")
    return "[" + ",".join(out) + "]"


def _expand(df: pd.DataFrame) -> pd.DataFrame:
    """Spread the JSON `data` column into columns (nested dicts become dotted names)."""
    if df.empty:
        return df.drop(columns=["data"])
    extra = pd.json_normalize([json.loads(d) for d in df.pop("data")])
    extra.index = df.index
    return pd.concat([df, extra.drop(columns=[c for c in extra.columns if c in df.columns])], axis=1)
