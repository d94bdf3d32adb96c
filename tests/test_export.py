"""Plans written for other trainers: verl's RL dataset schema, read back with pyarrow."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from bench.synthetic import fill_profile
from sgpo.errors import DataError
from sgpo.export import export_verl
from sgpo.plan import PlanConfig, make_plan
from sgpo.store import Store


@pytest.fixture
def planned(tmp_path):
    store = Store(tmp_path / "s.db")
    from sgpo.data import load_dataset

    row = fill_profile(store, "p", n=240)
    store.update_profile(row["id"], dataset_hash=load_dataset("builtin:train").hash)
    row = store.find_profile(row["id"])
    plan = make_plan(store.profile_frame(row["id"]), PlanConfig(group_rule="pow2"), n_params=row["n_params"])
    return plan, row


def test_verl_export_writes_one_ordered_parquet_per_phase_in_verls_schema(planned, tmp_path):
    plan, row = planned
    out = export_verl(plan, row, tmp_path / "verl")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["rollout_n"] for p in manifest["phases"]] == [ph.group_size for ph in plan.phases]
    for ph, entry in zip(plan.phases, manifest["phases"]):
        table = pq.read_table(out / entry["file"])
        assert table.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
        rows = table.to_pylist()
        assert [r["extra_info"]["id"] for r in rows] == ph.ids.tolist()  # the plan's order
        assert all(r["prompt"][0]["role"] == "user" and r["prompt"][0]["content"] for r in rows)
        assert all(r["reward_model"]["style"] == "rule" and r["reward_model"]["ground_truth"] for r in rows)
        p_hat = plan.queries["p_hat"].to_numpy()[ph.positions]
        assert np.allclose([r["extra_info"]["p_hat"] for r in rows], p_hat)
        assert {r["extra_info"]["group_size"] for r in rows} == {ph.group_size}
        assert (
            "data.shuffle=False" in entry["command"]
            and f"actor_rollout_ref.rollout.n={ph.group_size}" in entry["command"]
        )


def test_verl_export_onto_a_file_is_refused(planned, tmp_path):
    plan, row = planned
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(DataError, match="is a file"):
        export_verl(plan, row, target)


def test_sgpo_plan_export_verl_writes_the_phases(cli, tmp_path):
    from sgpo.data import load_dataset

    store = Store(tmp_path / "s.db")
    row = fill_profile(store, "p", n=240)
    store.update_profile(row["id"], dataset_hash=load_dataset("builtin:train").hash)
    code, out, err = cli("plan", "p", "--db", store.path, "--export-verl", tmp_path / "v", "--json")
    assert code == 0, err
    manifest = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert json.loads(out)["export_verl"] == str(tmp_path / "v")
    assert sum(p["queries"] for p in manifest["phases"]) == sum(ph["count"] for ph in json.loads(out)["phases"])


def test_re_exporting_a_smaller_plan_clears_the_older_exports_files_and_lists_what_it_wrote(cli, tmp_path):
    from sgpo.data import load_dataset

    store = Store(tmp_path / "s.db")
    row = fill_profile(store, "p", n=240)
    store.update_profile(row["id"], dataset_hash=load_dataset("builtin:train").hash)
    out = tmp_path / "v"
    three = json.loads(cli("plan", "p", "--db", store.path, "--export-verl", out, "--group-rule", "pow2", "--json")[1])
    two = ["--g-max", "4", "--json"]
    assert len(three["phases"]) == 3
    (out / "phase-7.parquet.tmp").write_bytes(b"left by a killed export")
    code, printed, err = cli("plan", "p", "--db", store.path, "--export-verl", out, "--group-rule", "pow2", *two)
    assert code == 0, err
    made = json.loads(printed)
    assert len(made["phases"]) == 2 and sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "phase-0.parquet",
        "phase-1.parquet",
    ]
    assert made["export_verl_files"] == [str(out / f) for f in ("phase-0.parquet", "phase-1.parquet", "manifest.json")]
    code, text, _ = cli("plan", "p", "--db", store.path, "--export-trl", tmp_path / "t")
    assert code == 0 and f"trl export: {tmp_path / 't' / 'phase-0.jsonl'}" in text


def test_an_export_into_a_folder_holding_other_files_is_refused_and_nothing_is_written(cli, tmp_path):
    from sgpo.data import load_dataset

    store = Store(tmp_path / "s.db")
    row = fill_profile(store, "p", n=240)
    store.update_profile(row["id"], dataset_hash=load_dataset("builtin:train").hash)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, out, err = cli("plan", "p", "--db", store.path, "--export-verl", mine)
    assert code == 2 and out == "" and err.startswith("error: --export-verl") and "notes.txt" in err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_verl_rows_carry_a_stable_data_source_the_user_can_set_and_what_compute_score_needs(planned, tmp_path):
    from sgpo.tasks import verl_reward

    plan, row = planned
    out = export_verl(plan, row, tmp_path / "default")
    rows = pq.read_table(out / "phase-0.parquet").to_pylist()
    assert {r["data_source"] for r in rows} == {"sgpo/train"}  # the dataset's name, not a file's stem
    assert all(r["extra_info"]["reward"] == "exact" and r["extra_info"]["task"] for r in rows)
    first = rows[0]
    gold = first["reward_model"]["ground_truth"]
    assert verl_reward.compute_score(first["data_source"], gold, gold, first["extra_info"]) == 1.0
    named = export_verl(plan, row, tmp_path / "named", data_source="my-org/sorting")
    assert {r["data_source"] for r in pq.read_table(named / "phase-0.parquet").to_pylist()} == {"my-org/sorting"}
    assert json.loads((named / "manifest.json").read_text())["data_source"] == "my-org/sorting"
