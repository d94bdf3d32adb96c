"""A plain TRL script (TRL, transformers and our callback, nothing else of sgpo) streams into a store,
and the dashboard shows the run like a native one."""

import subprocess
import sys
import textwrap

import pytest
from safetensors.torch import load_file

from sgpo.store import Store
from tests.conftest import ROOT

SCRIPT = textwrap.dedent("""
    import json, sys
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from sgpo.integrations.trl import SgpoCallback

    model_dir, data_file, db, steps, fail = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
    logging_steps, if_exists = int(sys.argv[6]), sys.argv[7]
    rows = [json.loads(line) for line in open(data_file)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)

    def reward(completions, answer, **kw):
        if fail and kw["trainer_state"].global_step >= 2:
            raise RuntimeError("reward server went away")
        return [float(c.strip() == a) for c, a in zip(completions, answer)]

    args = GRPOConfig(output_dir=db + ".out", use_cpu=True, report_to="none", num_generations=4,
                      per_device_train_batch_size=16, max_completion_length=1, max_steps=steps, logging_steps=logging_steps,
                      learning_rate=1e-3, beta=0.0, save_strategy="no", disable_tqdm=True)
    trainer = GRPOTrainer(model=model, args=args, processing_class=tok, reward_funcs=reward,
                          train_dataset=Dataset.from_list([{"prompt": r["prompt"], "answer": r["answer"]} for r in rows]),
                          callbacks=[SgpoCallback(db, name="from-trl", if_exists=if_exists)])
    trainer.train()
""")


def run_script(tmp_path, toy, steps, fail=False, logging_steps=1, if_exists="fail"):
    script = tmp_path / "plain_trl.py"
    script.write_text(SCRIPT)
    db = tmp_path / "trl.db"
    args = [str(toy.model), str(toy.data), str(db), str(steps), "1" if fail else "0", str(logging_steps), if_exists]
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    return done, db


@pytest.mark.slow
def test_a_plain_trl_script_streams_every_step_under_our_metric_names(tmp_path, toy, monkeypatch):
    done, db = run_script(tmp_path, toy, steps=3)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "import sgpo" not in SCRIPT and SCRIPT.count("from sgpo") == 1  # one line added to a TRL script
    store = Store(db)
    run = store.find_run("from-trl")
    assert run["status"] == "finished" and run["config"]["num_generations"] == 4
    m = store.metrics_frame(run["id"])
    assert m["step"].tolist() == [0, 1, 2, 3]
    steps = m.iloc[1:]
    assert (steps["rollouts"] == 16).all() and (steps["groups"] == 4).all()
    assert ((steps["wasted_rollouts"] + steps["informative_groups"] * 4) == 16).all()
    assert steps["step_wasted_fraction"].between(0, 1).all() and steps["reward_mean"].notna().all()
    n = sum(
        p.numel()
        for p in __import__("safetensors.torch", fromlist=["load_file"])
        .load_file(str(toy.model / "model.safetensors"))
        .values()
    )
    last = steps.iloc[-1]
    assert last["flops_train"] == pytest.approx(3 * last["flops_rollout"])  # every completion is trained
    assert last["flops_rollout"] == pytest.approx(2 * n * steps["tokens_trained"].sum())
    assert last["run_wasted_fraction"] == pytest.approx(steps["wasted_rollouts"].sum() / 48)

    # the dashboard shows it like a native run
    from tests.apps import app, no_exception

    monkeypatch.setenv("SGPO_DB", str(db))
    monkeypatch.setenv("SGPO_AUTOPROFILE", "0")
    at = app("train")
    no_exception(at)
    assert at.selectbox(key="train_run").value == "from-trl"
    assert [mt.value for mt in at.metric][:3] == ["finished", "3", "grpo"]
    assert len(at.get("plotly_chart")) >= 4


@pytest.mark.slow
def test_a_trl_run_that_raises_ends_failed_with_the_exception_message(tmp_path, toy):
    done, db = run_script(tmp_path, toy, steps=5, fail=True)
    assert done.returncode != 0 and "reward server went away" in done.stderr
    store = Store(db)
    run = store.find_run("from-trl")
    assert run["status"] == "failed"
    assert any(e["kind"] == "failed" and "reward server went away" in e["message"] for e in store.events(run["id"]))


@pytest.fixture
def atexit_hooks(monkeypatch):
    """The atexit hooks registered (and not unregistered) while the test runs (imports add their own)."""
    import atexit

    hooks: list = []

    def register(fn, *args, **kwargs):
        hooks.append(fn)
        return fn

    def unregister(fn):
        hooks[:] = [h for h in hooks if h != fn]

    monkeypatch.setattr(atexit, "register", register)
    monkeypatch.setattr(atexit, "unregister", unregister)
    return hooks


def _begin(tmp_path, name: str):
    from types import SimpleNamespace

    from sgpo.integrations.trl import SgpoCallback

    callback = SgpoCallback(tmp_path / "hooks.db", name=name)
    args = SimpleNamespace(num_generations=4, per_device_train_batch_size=8, gradient_accumulation_steps=1, beta=0.0)
    callback.on_train_begin(args, SimpleNamespace(is_world_process_zero=True), None)
    return callback, args


def test_the_callback_puts_back_the_excepthook_and_atexit_hook_it_replaced_when_training_ends(
    tmp_path, monkeypatch, atexit_hooks
):
    from types import SimpleNamespace

    monkeypatch.setattr(sys, "excepthook", lambda *exc: None)
    before = sys.excepthook
    callback, args = _begin(tmp_path, "ends")
    assert sys.excepthook is not before and callback._exited_early in atexit_hooks  # watching while it trains
    callback.on_train_end(args, SimpleNamespace(global_step=0), None)
    assert sys.excepthook is before and callback._exited_early not in atexit_hooks
    assert Store(tmp_path / "hooks.db").find_run("ends")["status"] == "finished"


def test_the_callback_puts_back_its_hooks_when_training_fails(tmp_path, monkeypatch, atexit_hooks):
    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: seen.append(exc[0]))
    before = sys.excepthook
    callback, _ = _begin(tmp_path, "fails")
    sys.excepthook(RuntimeError, RuntimeError("reward server went away"), None)  # what an uncaught exception does
    assert seen == [RuntimeError]  # the previous hook still ran
    assert sys.excepthook is before and callback._exited_early not in atexit_hooks
    store = Store(tmp_path / "hooks.db")
    run = store.find_run("fails")
    assert (
        run["status"] == "failed" and store.events(run["id"])[-1]["message"] == "RuntimeError: reward server went away"
    )


@pytest.mark.slow
def test_with_trls_default_logging_steps_every_step_is_stored_with_its_rollouts_counted(tmp_path, toy):
    """logging_steps=10 (TRL's default) over 3 steps: TRL logs once, at the end; every step is still a row,
    with its own 16 rollouts and its own tokens, and the run's totals count all 48 rollouts."""
    done, db = run_script(tmp_path, toy, steps=3, logging_steps=10)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store(db)
    run = store.find_run("from-trl")
    m = store.metrics_frame(run["id"])
    assert run["status"] == "finished" and m["step"].tolist() == [0, 1, 2, 3]
    steps = m.iloc[1:]
    assert (steps["rollouts"] == 16).all() and steps["rollouts_total"].tolist() == [16, 32, 48]
    assert (steps["tokens_trained"] > 0).all() and steps["wasted_rollouts"].notna().all()
    n = sum(t.numel() for t in load_file(str(toy.model / "model.safetensors")).values())
    assert m.iloc[-1]["flops_rollout"] == pytest.approx(2 * n * steps["tokens_trained"].sum())  # every token counted
    assert run["result"]["rollouts_total"] == 48 and run["config"]["logging_steps"] == 10


@pytest.mark.slow
def test_running_a_script_again_under_a_taken_name_fails_before_training_or_takes_a_suffix(tmp_path, toy):
    first, db = run_script(tmp_path, toy, steps=1)
    assert first.returncode == 0, first.stderr[-3000:]
    again, _ = run_script(tmp_path, toy, steps=1)
    said = [line for line in again.stderr.splitlines() if "already exists" in line]
    assert again.returncode != 0 and len(said) == 1 and "if_exists='suffix'" in said[0] and "'from-trl-2'" in said[0]
    assert "sgpo runs resume" not in again.stderr  # advice for a script, not for a run sgpo started
    store = Store(db)
    assert [r["name"] for r in store.runs()] == ["from-trl"]  # nothing trained, nothing stored
    suffixed, _ = run_script(tmp_path, toy, steps=1, if_exists="suffix")
    assert suffixed.returncode == 0, suffixed.stderr[-3000:]
    assert [(r["name"], r["status"]) for r in store.runs()] == [("from-trl", "finished"), ("from-trl-2", "finished")]


def test_a_taken_name_is_refused_when_the_callback_is_made_and_a_bad_choice_names_if_exists(tmp_path):
    from sgpo.errors import ConfigError, StoreError
    from sgpo.integrations.trl import SgpoCallback

    store = Store(tmp_path / "s.db")
    store.create_run(name="mine", strategy="grpo", config={})
    with pytest.raises(StoreError, match=r"'mine' already exists .* if_exists='suffix' .* 'mine-2'"):
        SgpoCallback(store.path, name="mine")
    with pytest.raises(ConfigError, match="if_exists"):
        SgpoCallback(store.path, name="mine", if_exists="overwrite")
    assert SgpoCallback(store.path, name="mine", if_exists="suffix").name == "mine"  # suffixed when training begins


def test_every_step_end_is_a_row_when_trl_logs_every_tenth_step(tmp_path):
    """The step hooks without TRL: 12 steps, a log after the 10th and one when training ends."""
    from types import SimpleNamespace

    from sgpo.integrations.trl import SgpoCallback

    callback = SgpoCallback(tmp_path / "s.db", name="hooks")
    args = SimpleNamespace(num_generations=4, per_device_train_batch_size=8, gradient_accumulation_steps=1, beta=0.0)
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, num_input_tokens_seen=0)
    callback.on_train_begin(args, state, None)
    logs = {"frac_reward_zero_std": 0.5, "reward": 0.25, "completions/mean_length": 1.0}
    for step in range(1, 13):
        state.global_step, state.num_input_tokens_seen = step, 100 * step
        callback.on_step_begin(args, state, None)
        callback.on_step_end(args, state, None)
        if step == 10:
            callback.on_log(args, state, None, logs={**logs, "loss": 0.1})
    callback.on_log(args, state, None, logs={"train_runtime": 1.0, **logs})  # TRL's summary when training ends
    callback.on_train_end(args, state, None)
    m = Store(tmp_path / "s.db").metrics_frame(1)
    assert m["step"].tolist() == list(range(13))
    steps = m.iloc[1:]
    assert (steps["rollouts"] == 8).all() and (steps["tokens_trained"] == 100).all()
    assert (steps["wasted_rollouts"] == 4).all() and m.iloc[-1]["rollouts_total"] == 96
