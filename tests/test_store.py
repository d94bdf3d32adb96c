import sqlite3
import threading

import pytest

from sgpo.errors import ConfigError, StoreError
from sgpo.store import SCHEMA_VERSION, Store


def make_profile(store, name="p"):
    return store.create_profile(
        {
            "name": name,
            "key": "k",
            "status": "running",
            "dataset_hash": "d",
            "model_hash": "m",
            "samples": 8,
            "queries_total": 2,
            "queries_done": 0,
        }
    )


def test_new_store_is_wal_and_at_the_current_schema_version(db_path):
    store = Store(db_path)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for table in ("datasets", "profiles", "profile_queries", "plans", "runs", "metrics", "evals", "events"):
        assert store.db[table].exists(), table
    Store(db_path)  # re-opening migrates nothing and fails nothing


def test_newer_schema_is_refused_with_advice(db_path):
    Store(db_path).db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this sgpo"):
        Store(db_path)


def test_default_path_follows_sgpo_db(monkeypatch, tmp_path):
    monkeypatch.setenv("SGPO_DB", str(tmp_path / "x.db"))
    assert Store.default().path == tmp_path / "x.db"
    assert Store.default(tmp_path / "y.db").path == tmp_path / "y.db"


def test_a_failed_batch_leaves_nothing_behind(db_path):
    store = Store(db_path)
    pid = make_profile(store)
    good = {"position": 0, "query_id": "a", "p_hat": 0.5}
    store.add_profile_batch(pid, [good], {"queries_done": 1})
    with pytest.raises(sqlite3.IntegrityError):  # position 0 twice: the whole batch must roll back
        store.add_profile_batch(pid, [{**good, "position": 1}, good], {"queries_done": 3})
    assert store.profiled_positions(pid) == {0}
    assert store.find_profile(pid)["queries_done"] == 1


def test_redone_steps_overwrite_instead_of_duplicating(db_path):
    store = Store(db_path)
    run = store.create_run(name="r", strategy="grpo", config={})
    for step in (1, 2, 3, 2, 3):  # a resume redoes steps 2 and 3
        store.log_step(
            run,
            step,
            0,
            0.1 * step,
            {"reward_mean": step / 10, "flops": {"train": step}},
            eval_row={"flops_total": 1.0, "accuracy": 0.5, "data": {"rev": 0.4}} if step == 3 else None,
        )
    frame = store.metrics_frame(run)
    assert frame["step"].tolist() == [1, 2, 3]
    assert frame["flops.train"].tolist() == [1, 2, 3]
    assert store.evals_frame(run)["rev"].tolist() == [0.4]
    assert store.find_run(run)["step"] == 3


def test_duplicate_names_are_clear_errors(db_path):
    store = Store(db_path)
    store.create_run(name="r", strategy="grpo", config={})
    with pytest.raises(StoreError, match="run named 'r' already exists"):
        store.create_run(name="r", strategy="sgpo", config={})
    make_profile(store, "p")
    with pytest.raises(StoreError, match="profile named 'p' already exists"):
        make_profile(store, "p")
    with pytest.raises(StoreError, match="no profile 'zzz'"):
        store.find_profile("zzz")


def test_readers_see_a_writer_without_lock_errors(db_path):
    store = Store(db_path)
    run = store.create_run(name="live", strategy="sgpo", config={})
    errors, seen = [], []

    def read():
        for _ in range(50):
            try:
                seen.append(len(Store(db_path).metrics_frame(run)))
            except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for step in range(1, 201):
        store.log_step(run, step, 0, 0.0, {"reward_mean": 0.5})
    for t in readers:
        t.join()
    assert errors == [] and len(store.metrics_frame(run)) == 200 and max(seen) > 0


def test_a_v1_store_is_migrated_to_the_one_metric_vocabulary(db_path):
    """A store written before schema v2 keeps its runs, under the vocabulary's names (sgpo/vocab.py)."""
    import json
    import sqlite3

    import sqlite_utils

    from sgpo.store import MIGRATIONS

    db = sqlite_utils.Database(sqlite3.connect(str(db_path)))
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db["runs"].insert(
        {
            "id": 1,
            "name": "old",
            "strategy": "grpo",
            "status": "finished",
            "config": "{}",
            "result": json.dumps({"wasted_fraction": 0.5, "rollouts_wasted_total": 64}),
        }
    )
    db["metrics"].insert(
        {
            "run_id": 1,
            "step": 1,
            "phase": 0,
            "wall_seconds": 1.0,
            "data": json.dumps(
                {"rollouts": 64, "rollouts_wasted": 16, "groups": 8, "groups_informative": 6, "wasted_fraction": 0.25}
            ),
        }
    )
    db["profiles"].insert({"id": 1, "name": "p", "key": "k", "status": "done"})
    db["plans"].insert(
        {
            "id": 1,
            "name": "pl",
            "profile_id": 1,
            "config": "{}",
            "counts": "{}",
            "forecast": json.dumps(
                {"plan": {"wasted_fraction": 0.3, "informative_fraction": 0.6, "wasted_rollouts": 10.0}, "ratio": 1.5}
            ),
        }
    )
    db.conn.commit()
    db.conn.close()

    store = Store(db_path)
    m = store.metrics_frame(1).iloc[0]
    assert (m["wasted_rollouts"], m["informative_groups"], m["run_wasted_fraction"]) == (16, 6, 0.25)
    assert m["step_wasted_fraction"] == 0.25 and m["step_informative_fraction"] == 0.75
    assert not {"rollouts_wasted", "groups_informative", "wasted_fraction"} & set(m.index)
    assert store.find_run("old")["result"] == {"run_wasted_fraction": 0.5, "wasted_rollouts_total": 64}
    assert store.find_plan("pl")["forecast"]["plan"] == {
        "forecast_wasted_fraction": 0.3,
        "forecast_informative_fraction": 0.6,
        "expected_wasted_rollouts": 10.0,
    }
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # v1 -> v2 -> v3
    assert "settings" in store.db["profiles"].columns_dict  # v3: profiles record their settings


def test_check_new_name_is_the_one_name_check_for_profiles_plans_and_runs(db_path):
    store = Store(db_path)
    store.create_run(name="r", strategy="grpo", config={})
    make_profile(store, "p")
    assert store.check_new_name("run", " fresh ") == "fresh"
    assert store.check_new_name("plan", "p") == "p"  # names are per kind: a plan may share a profile's name
    with pytest.raises(StoreError, match=r"a run named 'r' already exists .*choose another --name, or continue"):
        store.check_new_name("run", "r")
    with pytest.raises(StoreError, match=r"a profile named 'p' already exists .*choose another profile name$"):
        store.check_new_name("profile", "p", "profile name")
    with pytest.raises(ConfigError, match=r"^--save '42': a plan name is 1-64 letters"):
        store.check_new_name("plan", "42", "--save")
    with pytest.raises(StoreError, match="plan named 'x' already exists"):  # save_plan keeps the same rule
        for _ in range(2):
            store.save_plan(name="x", profile_id=1, config={}, counts={}, forecast={})


def test_delete_run_removes_the_run_and_every_row_of_it_and_nothing_else(db_path):
    store = Store(db_path)
    keep, gone = (store.create_run(name=n, strategy="grpo", config={}) for n in ("keep", "gone"))
    for run in (keep, gone):
        store.log_step(run, 1, 0, 0.1, {"reward_mean": 0.5}, eval_row={"flops_total": 1.0, "accuracy": 0.5, "data": {}})
        store.event(run, "start", "started")
    store.delete_run(gone)
    assert [r["name"] for r in store.runs()] == ["keep"]
    for table in Store.RUN_TABLES:
        left = store.db.conn.execute(f"SELECT DISTINCT run_id FROM {table}").fetchall()
        assert all(row[0] == keep for row in left), table
    assert len(store.metrics_frame(keep)) == 1 and len(store.evals_frame(keep)) == 1
