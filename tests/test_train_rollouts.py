"""Real training runs store every step's groups beside its metrics row: our engine (trained, skipped and DAPO's
dropped groups), TRL's engine through our reward function, a plain TRL script through SgpoRolloutsCallback;
a resumed run replays its lost steps' groups exactly, once; and the store grows by no more than the bound
the README documents (bytes per step, measured with SQLite's dbstat)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sgpo import rollouts, runs
from sgpo.store import Store
from sgpo.train import TrainConfig
from sgpo.train.loop import Trainer
from sgpo.train.setup import load
from tests.conftest import ROOT
from tests.toys import toy_config

GROUP_TABLES = ("rollout_groups", "rollout_groups_query")


def test_every_step_of_a_native_run_stores_its_groups_with_the_metrics(toy, tmp_path, one_thread):
    s = Store(tmp_path / "sgpo.db")
    runs.train(toy_config(toy, strategy="grpo", steps=3, keep_completions=2), s, name="r", log=lambda m: None)
    m = s.metrics_frame(1).set_index("step")
    g = rollouts.groups("r", s, steps=(1, 3))
    per_step = g.groupby("step")
    assert per_step.size().to_dict() == m.loc[1:3, "groups"].astype(int).to_dict()
    informative = per_step["outcome"].apply(lambda o: int((o == "mixed").sum()))
    assert informative.to_dict() == m.loc[1:3, "informative_groups"].astype(int).to_dict()
    assert (g["group_size"] == 4).all() and (g["status"] == g["outcome"].map(_status_when_skipping)).all()
    kept = g[g["completions"].notna()]
    assert kept.groupby("step").size().tolist() == [2, 2, 2]  # keep_completions groups a step, with texts
    assert all(len(t) == 4 and all(isinstance(x, str) for x in t) for t in kept["completions"])
    assert "rollout_groups" not in s.metrics_frame(1).columns  # they ride to the recorder, not into the JSON
    assert set(s.run_queries_frame(1)["query_id"]) >= set(g["query_id"])


def _status_when_skipping(outcome: str) -> str:
    return "trained" if outcome == "mixed" else "skipped"


def test_dapo_keeps_the_groups_it_dropped_and_no_texts_when_asked_for_none(toy, tmp_path, one_thread):
    s = Store(tmp_path / "sgpo.db")
    runs.train(toy_config(toy, strategy="dapo", steps=2, keep_completions=0), s, name="d", log=lambda m: None)
    g = rollouts.groups("d", s, steps=(1, 2))
    m = s.metrics_frame(1).set_index("step")
    assert g.groupby("step").size().to_dict() == m.loc[1:2, "groups"].astype(int).to_dict()  # dropped ones too
    dropped = g[g["status"] == "dropped"]
    assert len(dropped) and (dropped["outcome"] != "mixed").all()
    assert g["completions"].isna().all()


def test_a_resumed_run_replays_the_lost_steps_groups_once_and_identically(toy, tmp_path, one_thread, stop_after):
    cfg = toy_config(toy, strategy="grpo", steps=6, checkpoint_every=2, eval_every=0)
    a = Store(tmp_path / "a" / "sgpo.db")
    runs.train(cfg, a, name="k", log=lambda m: None)
    b = Store(tmp_path / "b" / "sgpo.db")
    run = runs.create(cfg, b, name="k")
    stop_after(Trainer(load(run, b), b, run["id"], log=lambda m: None), 5).run()  # checkpoints at 4 and 5
    latest = tmp_path / "b" / "checkpoints" / "k" / "step-000005" / "model.safetensors"
    latest.write_bytes(latest.read_bytes()[:100])  # step 5's checkpoint is lost: the resume replays step 5
    runs.resume("k", b, log=lambda m: None)
    ga, gb = (rollouts.groups("k", s, steps=(1, 6)).drop(columns=["p_hat", "band"]) for s in (a, b))
    assert gb.groupby(["step", "slot"]).size().max() == 1  # nothing twice
    assert ga.to_json() == gb.to_json()  # the same groups, kept texts included


@pytest.mark.slow
def test_the_trl_engine_stores_the_groups_our_reward_function_scored(toy, tmp_path, one_thread):
    s = Store(tmp_path / "sgpo.db")
    runs.train(toy_config(toy, strategy="grpo", engine="trl", steps=2), s, name="t", log=lambda m: None)
    g = rollouts.groups("t", s, steps=(1, 2))
    m = s.metrics_frame(1).set_index("step")
    assert g.groupby("step").size().to_dict() == m.loc[1:2, "groups"].astype(int).to_dict()
    assert (g["status"] == "trained").all()  # TRL trains every completion
    assert (g["group_size"] == 4).all() and g["query_id"].str.startswith("toy-").all()
    assert g[g["completions"].notna()].groupby("step").size().tolist() == [2, 2]


SCRIPT = textwrap.dedent("""
    import json, sys
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from sgpo.integrations.trl import SgpoRolloutsCallback

    model_dir, data_file, db = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = [json.loads(line) for line in open(data_file)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)

    def reward(completions, answer, **kw):
        return [float(c.strip() == a) for c, a in zip(completions, answer)]

    args = GRPOConfig(output_dir=db + ".out", use_cpu=True, report_to="none", num_generations=4,
                      per_device_train_batch_size=16, max_completion_length=1, max_steps=2, logging_steps=1,
                      learning_rate=1e-3, beta=0.0, save_strategy="no", disable_tqdm=True)
    callback = SgpoRolloutsCallback(db, name="from-trl", keep_completions=1)
    trainer = GRPOTrainer(model=model, args=args, processing_class=tok, reward_funcs=callback.wrap(reward),
                          train_dataset=Dataset.from_list(
                              [{"prompt": r["prompt"], "answer": r["answer"], "id": r["id"]} for r in rows]),
                          callbacks=[callback])
    trainer.train()
""")


@pytest.mark.slow
def test_a_plain_trl_script_stores_its_groups_through_the_opt_in_wrapper(toy, tmp_path):
    script = tmp_path / "plain_trl.py"
    script.write_text(SCRIPT)
    db = tmp_path / "trl.db"
    done = subprocess.run(
        [sys.executable, str(script), str(toy.model), str(toy.data), str(db)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    s = Store(db)
    g = rollouts.groups("from-trl", s, steps=(1, 2))
    assert g.groupby("step").size().tolist() == [4, 4]  # 16 completions a step, groups of 4
    assert g["query_id"].str.startswith("toy-").all()  # known by the dataset's id column
    assert g[g["completions"].notna()].groupby("step").size().tolist() == [1, 1]
    m = s.metrics_frame(s.find_run("from-trl")["id"]).set_index("step")
    assert (
        g.groupby("step")["outcome"].apply(lambda o: (o == "mixed").sum()) == m.loc[1:2, "informative_groups"]
    ).all()


@pytest.mark.slow
def test_the_store_grows_by_no_more_than_the_documented_bound_at_the_default_settings(tmp_path, one_thread):
    """The starter at 256 rollouts a step, in groups of 2 (128 groups a step: the most rows a step of the
    default plan writes), default keep_completions; growth in bytes of the group tables per step."""
    s = Store(tmp_path / "sgpo.db")
    cfg = TrainConfig(strategy="grpo", group_size=2, steps=3, eval_every=0, threads=1, checkpoint_every=100)
    assert cfg.batch_rollouts == 256 and cfg.keep_completions == 2  # the defaults the bound is for
    runs.train(cfg, s, name="g2", log=lambda m: None)
    assert len(s.groups_frame(1, texts=False)) == 3 * 128
    per_step = s.table_bytes(*GROUP_TABLES) / 3
    assert per_step <= rollouts.STORE_BYTES_PER_STEP, per_step
    per_query = s.table_bytes("run_queries") / len(s.run_queries_frame(1))
    assert per_query <= rollouts.STORE_BYTES_PER_QUERY, per_query
