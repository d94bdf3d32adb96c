"""Train page: launching `sgpo train` from the page's knobs, the live view of runs, stop and resume."""

import os
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from typer.main import get_command

from bench.synthetic import fill_checkpoint, fill_long_run, fill_profile, fill_run
from dashboard import state
from dashboard.curves import PALETTE
from sgpo import launch, runs
from sgpo.cli.main import app as cli
from sgpo.store import Store
from tests.apps import Launched, Started, app, chart, errors, no_exception, raw_numbers, values


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
    assert line.startswith(
        "sgpo train --strategy sgpo --engine native --dataset builtin:train --profile prof --model starter "
        "--steps 100 --batch-rollouts 256 --group-size 8 --lr 5e-05 --eval-every 25 --seed 0 "
        "--name sgpo-1"
    )
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
    assert {k: ctx.params[k] for k in ("strategy", "steps", "lr", "dataset", "model")} == {
        k: run["config"][k] for k in ("strategy", "steps", "lr", "dataset", "model")
    }
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
    assert [m.value for m in at.metric][3:] == ["13.0 GFLOP", "42.2%", "2.0 s"]  # total compute, wasted, wall time
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert len(specs) == 6  # reward, wasted, informative, compute, accuracy, and the critical-batch gauge
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
    s.update_run(1, pid=2**22 + 12345)  # no such process
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


def test_the_metrics_cache_keeps_only_the_most_recently_read_runs(tmp_path, monkeypatch):
    s = Store(tmp_path / "m.db")
    ids = [fill_run(s, f"r{i}", steps=3) for i in range(4)]
    cache = state.MetricsCache(max_runs=2)
    monkeypatch.setattr(state, "metrics_cache", lambda: cache)
    for run_id in ids:
        state.run_metrics(s, s.find_run(run_id))
    assert len(cache) == 2 and cache.keys() == [(str(s.path), ids[2]), (str(s.path), ids[3])]
    state.run_metrics(s, s.find_run(ids[2]))  # read again: now the most recent, so r3 is dropped next
    state.run_metrics(s, s.find_run(ids[0]))
    assert cache.keys() == [(str(s.path), ids[2]), (str(s.path), ids[0])]
    frame = state.run_metrics(s, s.find_run(ids[1]))  # dropped earlier: read in full again
    pd.testing.assert_frame_equal(frame, s.metrics_frame(ids[1]))


def test_the_metrics_cache_stays_bounded_under_concurrent_sessions():

    cache = state.MetricsCache(max_runs=8)
    frame = pd.DataFrame({"step": [0]})

    def session(i):
        for k in range(200):
            cache.put(("db", (i * 200 + k) % 50), {"frame": frame, "pid": None, "created": 0.0})
            cache.get(("db", k % 50))
            assert len(cache) <= 8

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(session, range(8)))
    assert len(cache) == 8 and len(set(cache.keys())) == 8


def charts(at) -> dict:
    return {
        k: chart(at, k) for k in ("chart_reward", "chart_wasted", "chart_informative", "chart_flops", "chart_accuracy")
    }


def test_overlay_runs_are_drawn_on_every_chart_each_in_one_colour(app_env):
    s = Store(app_env)
    fill_run(s, "g", "grpo", steps=10)
    fill_run(s, "s", "sgpo", steps=10)
    fill_run(s, "d", "dapo", steps=10)
    at = app("train")
    assert at.selectbox(key="train_run").value == "d" and at.multiselect(key="train_overlay").options == ["s", "g"]
    at.multiselect(key="train_overlay").set_value(["g", "s"]).run()
    no_exception(at)
    for key, spec in charts(at).items():
        colours = {}
        for t in spec["data"]:
            colours.setdefault(t["legendgroup"], set()).add(t["line"]["color"])
        assert colours == {"d": {PALETTE[2]}, "g": {PALETTE[0]}, "s": {PALETTE[1]}}, key  # a run's colour is its own


def test_the_x_axis_control_moves_every_chart_to_flops_tokens_or_wall_time(app_env):
    fill_long_run(Store(app_env), "r", "grpo", steps=50, eval_every=10)
    at = app("train")
    assert at.segmented_control(key="train_x").value == "step"
    metrics = Store(app_env).metrics_frame(1)
    for axis, title, column in (
        ("FLOPs", "(FLOP)", "flops_total"),
        ("tokens", "tokens", "tokens_total"),
        ("wall time", "wall time (s)", "wall_seconds"),
    ):
        at.segmented_control(key="train_x").set_value(axis).run()
        no_exception(at)
        for key, spec in charts(at).items():
            assert title in spec["layout"]["xaxis"]["title"]["text"], key
        assert np.allclose(values(chart(at, "chart_reward")["data"][0], "x"), metrics[column])


def test_the_smoothing_slider_puts_the_raw_values_faint_behind(app_env):
    fill_long_run(Store(app_env), "r", "grpo", steps=50)
    at = app("train")
    assert at.slider(key="train_smooth").value == 0.6
    raw, smooth = chart(at, "chart_reward")["data"]
    assert raw["opacity"] < 1 and not np.allclose(values(raw, "y"), values(smooth, "y"))
    at.slider(key="train_smooth").set_value(0.0).run()
    assert len(chart(at, "chart_reward")["data"]) == 1


def test_the_view_opens_from_its_url_query_parameters(app_env):
    s = Store(app_env)
    for name in ("a", "b", "c"):
        fill_long_run(s, name, "grpo", steps=20)
    at = app("train", train_run="a", train_overlay=["c", "nope"], train_x="FLOPs", train_smooth="0.9")
    no_exception(at)
    assert at.selectbox(key="train_run").value == "a" and at.multiselect(key="train_overlay").value == ["c"]
    assert at.segmented_control(key="train_x").value == "FLOPs" and at.slider(key="train_smooth").value == 0.9
    assert {t["legendgroup"] for t in chart(at, "chart_reward")["data"]} == {"a", "c"}
    assert "FLOP" in chart(at, "chart_reward")["layout"]["xaxis"]["title"]["text"]


def test_the_wasted_chart_shows_the_plans_forecast_for_runs_that_have_one(app_env):
    s = Store(app_env)
    fill_long_run(s, "plan", "sgpo", steps=30, forecast=0.31)
    fill_long_run(s, "fixed", "grpo", steps=30)  # no plan stored: no line
    at = app("train", train_run="plan", train_overlay=["fixed"])
    lines = [sh for sh in chart(at, "chart_wasted")["layout"]["shapes"] if sh["y0"] == sh["y1"]]
    assert [(sh["y0"], sh["line"]["color"]) for sh in lines] == [(0.31, PALETTE[0])]
    notes = [a["text"] for a in chart(at, "chart_wasted")["layout"]["annotations"]]
    assert "plan forecast 31.0%" in notes


@pytest.fixture
def launches(monkeypatch):
    """Records the workers sgpo.profiles would detach (argv, log) and starts none."""
    rec = Launched()
    monkeypatch.setattr(launch, "detach", rec)
    return rec


def test_profile_this_checkpoint_starts_sgpo_profile_on_the_runs_checkpoint(app_env, launches):
    s = Store(app_env)
    base = fill_profile(s, "prof", n=16)
    s.update_profile(base["id"], samples=16, temperature=0.7, max_new_tokens=12, query_limit=16)
    fill_long_run(s, "r", "sgpo", steps=30, profile_id=base["id"])
    for step in (20, 30):
        fill_checkpoint(s, "r", step)
    at = app("train")
    assert at.selectbox(key="train_checkpoint").options == ["step 30", "step 20"]
    at.selectbox(key="train_checkpoint").set_value(20)
    at.button(key="profile_checkpoint").click().run()
    no_exception(at)
    assert not errors(at)
    argv, log = launches[0]
    assert log.name == "profile-r-step20.log"
    assert argv[3:7] == ["profile", "builtin:train", "--model", "run:r@20"]
    assert argv[argv.index("--name") + 1] == "r-step20" and argv[argv.index("--db") + 1] == str(app_env)
    for flag, value in (("--samples", "16"), ("--temperature", "0.7"), ("--max-new-tokens", "12"), ("--limit", "16")):
        assert argv[argv.index(flag) + 1] == value  # the sampling the run's profile used: the p_hats compare
    assert any("audit?profile=r-step20&audit_before=prof" in m.value for m in at.success)


def test_a_run_without_checkpoints_cannot_be_profiled_and_a_pruned_one_is_refused(app_env, launches):
    s = Store(app_env)
    fill_long_run(s, "r", "grpo", steps=30)
    at = app("train")
    assert at.button(key="profile_checkpoint").disabled is True
    folder = fill_checkpoint(s, "r", 10)
    at.run()
    assert at.selectbox(key="train_checkpoint").value == 10  # the first checkpoint is chosen once it appears
    fill_checkpoint(s, "r", 20)
    at.run()
    shutil.rmtree(folder)  # step 10, still chosen, pruned after the page listed it
    at.button(key="profile_checkpoint").click().run()
    assert any("step 10 is no longer on disk" in e and "step 20 is chosen now" in e for e in errors(at)), errors(at)
    assert not launches and at.selectbox(key="train_checkpoint").value == 20


def test_runs_from_elsewhere_show_like_native_runs(app_env):
    """A run that streamed in from another trainer: its own strategy name, no config, few metrics."""
    s = Store(app_env)
    fill_long_run(s, "native", "sgpo", steps=20)
    run = s.create_run(name="trl-run", strategy="trl-grpo", config={})
    for step in range(4):
        s.log_step(run, step, 0, float(step), {"reward_mean": 0.1 * step, "loss": 0.5})
    at = app("train", train_run="trl-run", train_overlay=["native"], train_x="FLOPs")
    no_exception(at)
    assert not errors(at) and [m.value for m in at.metric][:3] == ["created", "3", "trl-grpo"]
    assert {t["legendgroup"] for t in chart(at, "chart_reward")["data"]} == {"native"}  # no FLOPs logged: left out
    at.segmented_control(key="train_x").set_value("step").run()
    assert {t["legendgroup"] for t in chart(at, "chart_reward")["data"]} == {"native", "trl-run"}
    cmp = app("compare")
    no_exception(cmp)
    assert "trl-run" in cmp.multiselect(key="compare_runs").options and not errors(cmp)


def test_a_stored_run_of_20000_steps_opens_with_every_line_downsampled(app_env):
    fill_long_run(Store(app_env), "long", "sgpo", steps=20_000)
    at = app("train")
    no_exception(at)
    assert at.metric[1].value == "20,000"
    for key, spec in charts(at).items():
        assert all(len(values(t, "x")) <= 1602 for t in spec["data"]), key
    assert not raw_numbers(at), raw_numbers(at)


def test_the_trl_engine_shows_its_accelerate_launch_line(app_env):
    fill_profile(Store(app_env), "prof", n=16)
    at = app("train")
    at.selectbox(key="train_strategy").set_value("grpo").run()
    at.selectbox(key="train_engine").set_value("trl").run()
    no_exception(at)
    assert "--engine trl" in at.code[0].value
    at.number_input(key="train_gpus").set_value(4).run()
    line = at.code[1].value
    assert line.startswith(
        "accelerate launch --config_file docs/accelerate/multi_gpu.yaml --num_processes 4 "
        "-m sgpo train --strategy grpo --engine trl"
    )
    assert "--detach" not in line and f"--db {app_env}" in line


def test_a_planned_run_shows_its_forecast_beside_what_it_measured(app_env):
    s = Store(app_env)
    fill_long_run(s, "plan", "sgpo", steps=30, forecast=0.31)
    fill_long_run(s, "fixed", "grpo", steps=30)  # no plan: no table
    at = app("train", train_run="plan")
    no_exception(at)
    table = next(d.value for d in at.dataframe if "quantity" in d.value.columns).set_index("quantity")
    assert table.loc["wasted rollouts", "forecast"] == "31.0%"
    assert table.loc["informative groups, first phase", "forecast"] == "66.0%"
    assert table.loc["steps"].tolist() == ["30", "30"]
    assert table.loc["wasted rollouts", "measured"].endswith("%")
    assert any("forecast verdict: sGPO pays" in c.value for c in at.caption)
    at = app("train", train_run="fixed")
    assert not any("quantity" in d.value.columns for d in at.dataframe)
