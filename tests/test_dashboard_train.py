"""Train page: launching `sgpo train` from the page's knobs, the live view of runs, stop and resume."""

import os
import shlex

import pandas as pd
import pytest
from typer.main import get_command

from sgpo import runs
from sgpo.cli.main import app as cli
from sgpo.launch import cli_line
from sgpo.store import Store
from tests.test_dashboard_helpers import Started, app, app_env, errors, fill_profile, fill_run, no_exception  # noqa: F401


@pytest.fixture
def launched(monkeypatch):
    """Runs are really created (every library check, the plan stored); their workers are not started."""
    rec = Started("start")
    monkeypatch.setattr(runs, "start", rec)
    return rec


def test_no_runs_shows_the_launch_form_with_its_cli_line(app_env):
    fill_profile(Store(app_env), "prof", n=16)
    at = app("train")
    no_exception(at)
    assert any("No runs yet" in i.value for i in at.info)
    line = at.code[0].value
    assert line.startswith("sgpo train --strategy sgpo --dataset builtin:train --profile prof --model starter "
                           "--steps 100 --batch-rollouts 256 --group-size 8 --lr 5e-05 --eval-every 25 --seed 0 "
                           "--name sgpo-1")
    assert line.endswith("--detach") and "--max-new-tokens" not in line  # other knobs only when changed


def test_launch_runs_the_exact_command_shown(app_env, launched):
    fill_profile(Store(app_env), "prof", n=16)
    at = app("train")
    at.selectbox(key="train_strategy").set_value("grpo").run()
    at.number_input(key="train_steps").set_value(7)
    at.number_input(key="train_lr").set_value(1e-4)
    at.text_input(key="run_name").input("baseline").run()
    shown = at.code[0].value
    at.button(key="launch_run").click().run()
    no_exception(at)
    assert not errors(at)
    assert launched == [("start", launched[0][1], True)]  # created, then started detached
    run = Store(app_env).find_run("baseline")
    assert run["status"] == "created" and run["config"]["steps"] == 7 and run["config"]["lr"] == 1e-4
    # the command shown creates exactly this run: its flags parse to the stored config
    ctx = get_command(cli).commands["train"].make_context("train", shlex.split(shown)[2:])
    assert ctx.params["name"] == "baseline" and ctx.params["detach"] is True
    assert ctx.params["db"] is not None and str(ctx.params["db"]) == str(app_env)
    assert {k: ctx.params[k] for k in ("strategy", "steps", "lr", "dataset", "model")} == \
        {k: run["config"][k] for k in ("strategy", "steps", "lr", "dataset", "model")}
    fill_run(Store(app_env), "newer", steps=2)
    at.run()
    assert at.selectbox(key="train_run").value == "baseline"  # the launched run is watched, not the newest


def test_more_knobs_are_passed_only_when_changed_and_parse_as_cli_flags(app_env, launched):
    fill_profile(Store(app_env), "prof", n=16)
    at = app("train")
    at.number_input(key="train_max_new_tokens").set_value(1)
    at.toggle(key="train_scale_rewards").set_value(False)
    at.selectbox(key="train_loss_aggregation").set_value("sequence-mean")
    at.text_input(key="train_eval_dataset").input("builtin:rev-eval").run()
    line = at.code[0].value
    assert "--max-new-tokens 1" in line and "--no-scale-rewards" in line
    assert "--loss-aggregation sequence-mean" in line and "--eval-dataset builtin:rev-eval" in line
    assert "--warmup-steps" not in line
    ctx = get_command(cli).commands["train"].make_context("train", shlex.split(line)[2:])
    assert ctx.params["max_new_tokens"] == 1 and ctx.params["scale_rewards"] is False
    assert ctx.params["profile"] == "prof" and ctx.params["detach"] is True


def test_a_run_name_in_use_is_refused_and_the_form_is_kept(app_env, launched):
    s = Store(app_env)
    fill_profile(s, "prof", n=16)
    fill_run(s, "taken", steps=3)
    at = app("train")
    at.selectbox(key="train_strategy").set_value("grpo").run()
    at.text_input(key="run_name").input("taken").run()
    at.button(key="launch_run").click().run()
    no_exception(at)
    assert any("already exists" in e for e in errors(at)), errors(at)
    assert not launched and at.text_input(key="run_name").value == "taken"
    assert len(Store(app_env).runs()) == 1


def test_launch_without_a_profile_says_so(app_env, launched):
    at = app("train")
    at.selectbox(key="train_strategy").set_value("grpo").run()
    at.button(key="launch_run").click().run()
    no_exception(at)
    assert any("no profile" in e for e in errors(at)), errors(at)
    assert not launched


def test_live_view_shows_status_step_charts_and_phase_marks(app_env):
    s = Store(app_env)
    p = fill_profile(s, "prof", n=16)
    fill_run(s, "g", "grpo", steps=10, profile_id=p["id"])
    fill_run(s, "s", "sgpo", steps=20, profile_id=p["id"], status="running")
    at = app("train")
    no_exception(at)
    assert at.selectbox(key="train_run").value == "s"
    assert at.dataframe[0].value["name"].tolist() == ["g", "s"]  # both runs, one store
    assert [m.value for m in at.metric][:3] == ["running", "20", "sgpo"]
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(specs) == 5
    assert '"phase 1"' in specs[0] and '"phase 2"' in specs[0]  # vertical lines at phase changes
    assert "difficulty 3" in specs[4]
    assert at.button(key="stop_run").disabled is False and at.button(key="resume_run").disabled is True


def test_stop_and_resume_call_the_run_lifecycle(app_env, monkeypatch):
    resumed = Started("resume")
    monkeypatch.setattr(runs, "resume", resumed)
    s = Store(app_env)
    fill_profile(s, "prof", n=16)
    fill_run(s, "r", "grpo", steps=3, status="running")  # owned by this (live) process: stop sends SIGTERM
    kills = []
    real_kill = os.kill
    monkeypatch.setattr(os, "kill", lambda pid, sig: real_kill(pid, 0) if sig == 0 else kills.append((pid, sig)))
    at = app("train")
    at.button(key="stop_run").click().run()
    no_exception(at)
    assert kills and kills[-1][0] == os.getpid()
    s.update_run(1, status="stopped", pid=None)
    at.run()
    at.button(key="resume_run").click().run()
    assert resumed == [("resume", "r", True)]


def test_a_run_whose_process_is_gone_shows_interrupted_and_can_resume(app_env, monkeypatch):
    resumed = Started("resume")
    monkeypatch.setattr(runs, "resume", resumed)
    s = Store(app_env)
    fill_run(s, "r", "grpo", steps=3, status="running")
    s.update_run(1, pid=2 ** 22 + 12345)  # no such process
    at = app("train")
    no_exception(at)
    assert at.metric[0].value == "interrupted"
    assert at.button(key="stop_run").disabled is True and at.button(key="resume_run").disabled is False
    at.button(key="resume_run").click().run()
    assert resumed == [("resume", "r", True)]


def test_log_tail_shows_the_end_of_the_runs_log(app_env, tmp_path):
    s = Store(app_env)
    run = fill_run(s, "r", "grpo", steps=2)
    log = tmp_path / "r.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    s.update_run(run, log_path=str(log))
    at = app("train")
    assert at.code[-1].value.splitlines()[-1] == "line 99" and "line 50" not in at.code[-1].value


def test_watched_metrics_are_read_incrementally_and_fully_again_after_a_resume(tmp_path):
    from dashboard import state

    s = Store(tmp_path / "m.db")
    run_id = fill_run(s, "r", steps=6)
    first = state.metrics_since(s, s.find_run(run_id), None)
    assert first["frame"]["step"].tolist() == list(range(7))
    s.log_step(run_id, 7, 0, 1.0, {"reward_mean": 0.7})  # a new step from the same process
    s.log_step(run_id, 3, 0, 1.0, {"reward_mean": -1.0})  # a step the cache holds, re-written behind it
    more = state.metrics_since(s, s.find_run(run_id), first)
    assert more["frame"]["step"].tolist() == list(range(8)) and more["frame"]["reward_mean"].iloc[-1] == 0.7
    assert more["frame"]["reward_mean"].iloc[3] != -1.0  # only steps after the cached ones were read
    s.update_run(run_id, pid=4242)  # a resume runs in a new process, which may re-write steps: read all
    again = state.metrics_since(s, s.find_run(run_id), more)
    pd.testing.assert_frame_equal(again["frame"], s.metrics_frame(run_id))
    assert again["frame"]["reward_mean"].iloc[3] == -1.0
