"""The plan on TRL's GRPOTrainer (`--engine trl`): phase by phase, the same metrics, FLOPs with TRL's
accounting, evals, checkpoints, stop and resume; and two processes under `accelerate launch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sgpo import runs
from sgpo.errors import SgpoError
from sgpo.plan import PlanConfig, make_plan
from sgpo.store import Store
from sgpo.train.setup import load, prepare
from tests.conftest import ROOT
from tests.toys import toy_cli_args, toy_config, toy_profile

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "db" / "sgpo.db")


def test_sgpo_on_trl_runs_each_phase_at_its_group_size_in_plan_order(toy, store):
    pid = toy_profile(store, toy)
    plan = {"group_rule": "pow2", "curriculum": "steps", "steps_per_phase": 2}
    result = runs.train(
        toy_config(
            toy, engine="trl", strategy="sgpo", profile=str(pid), steps=6, plan=plan, eval_every=3, checkpoint_every=3
        ),
        store,
        name="s",
    )
    assert result["status"] == "finished" and result["steps"] == 6
    m = runs.metrics("s", store).iloc[1:]
    phases = make_plan(store.profile_frame(pid), PlanConfig(**plan)).phases
    sizes = [ph.group_size for ph in phases]
    expected = [(i // 2) % len(phases) for i in range(6)]  # two steps a phase, then the curriculum again
    assert m["phase"].tolist() == expected
    assert m["group_size"].tolist() == [sizes[p] for p in expected]
    assert (m["rollouts"] == m["groups"] * m["group_size"]).all()
    assert ((m["wasted_rollouts"] + m["informative_groups"] * m["group_size"]) == m["rollouts"]).all()
    last = m.iloc[-1]
    assert last["flops_train"] == pytest.approx(3 * last["flops_rollout"])  # TRL trains every completion
    assert last["flops_total"] == pytest.approx(last["flops_profile"] + 4 * last["flops_rollout"])
    assert last["flops_profile"] > 0
    assert runs.evals("s", store)["step"].tolist() == [0, 3, 6]
    assert (store.path.parent / "checkpoints" / "s" / "step-000006" / "model.safetensors").exists()


def test_grpo_on_trl_is_plain_fixed_g_grpo(toy, store):
    result = runs.train(toy_config(toy, engine="trl", strategy="grpo", steps=3, eval_every=0), store, name="g")
    m = runs.metrics("g", store).iloc[1:]
    assert result["status"] == "finished" and (m["group_size"] == 4).all() and (m["rollouts"] == 32).all()
    assert m["reward_mean"].notna().all() and m["entropy"].notna().all()


def test_a_stopped_trl_run_checkpoints_and_resumes_to_its_budget(toy, store, stop_after):
    from sgpo.train.loop import Trainer

    prep = prepare(
        toy_config(toy, engine="trl", strategy="grpo", steps=5, eval_every=0, checkpoint_every=10), store, name="r"
    )
    run_id = store.create_run(**prep.run_row())
    trainer = Trainer(load(store.find_run(run_id), store), store, run_id, log=lambda msg: None)
    assert stop_after(trainer, 2).run()["status"] == "stopped"  # what SIGTERM does, two steps in
    assert store.find_run("r")["step"] == 2
    result = runs.resume("r", store)
    assert result["status"] == "finished" and result["steps"] == 5
    assert runs.metrics("r", store)["step"].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"trl": {"no_such_field": 1}}, "GRPOConfig has no field 'no_such_field'"),
        ({"trl": {"steps_per_generation": 3}}, "GRPOConfig refused"),
        ({"strategy": "dapo"}, "TRL has no DAPO"),
        ({"device": "cuda"}, "--device cuda"),
    ],
)
def test_bad_trl_engine_input_is_refused_before_anything_is_written(toy, store, kw, message):
    import torch

    if kw.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    with pytest.raises(SgpoError, match=message):
        runs.create(toy_config(toy, **{"engine": "trl", **kw}), store, name="bad")
    assert store.runs() == []


def test_trl_options_reach_grpo_config_from_the_command_line(toy, cli, tmp_path):
    options = tmp_path / "trl.yaml"
    options.write_text("top_k: 3\n")
    db = tmp_path / "o.db"
    code, out, err = cli(
        "train",
        "--engine",
        "trl",
        "--strategy",
        "grpo",
        "--steps",
        1,
        "--eval-every",
        0,
        "--trl",
        "temperature=0.9",
        "--trl-config",
        options,
        "--db",
        db,
        "--name",
        "o",
        *toy_cli_args(toy),
    )
    assert code == 0, err
    assert Store(db).find_run("o")["config"]["trl"] == {"top_k": 3, "temperature": 0.9}
    code, _, err = cli("train", "--engine", "trl", "--trl", "nope", "--db", db, *toy_cli_args(toy))
    assert code == 2 and "expected KEY=VALUE" in err


def accelerate(*args, port: int, db, timeout=600, wait=True):
    argv = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--main_process_port",
        str(port),
        "-m",
        "sgpo",
        *map(str, args),
        "--db",
        str(db),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if not wait:
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def free_port() -> int:
    from bench.browser import free_port as port

    return port()


@pytest.mark.timeout(900)
def test_two_processes_under_accelerate_launch_train_one_run_and_resume_after_a_rank_is_killed(toy, tmp_path):
    db = tmp_path / "mp.db"
    args = [
        "train",
        "--engine",
        "trl",
        "--device",
        "cpu",
        "--strategy",
        "grpo",
        "--eval-every",
        0,
        "--checkpoint-every",
        2,
        "--name",
        "mp",
        *toy_cli_args(toy),
    ]
    done = accelerate(*args, "--steps", 3, port=free_port(), db=db)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    store = Store(db)
    run = store.find_run("mp")
    assert run["status"] == "finished" and store.metrics_frame(run["id"])["step"].tolist() == [0, 1, 2, 3]
    assert [e["kind"] for e in store.events(run["id"])] == ["start", "finished"]  # one writer

    # a longer run; kill the second rank once a few steps are stored, then resume it under a new launch
    long_args = [
        "train",
        "--engine",
        "trl",
        "--device",
        "cpu",
        "--strategy",
        "grpo",
        "--eval-every",
        0,
        "--checkpoint-every",
        2,
        "--name",
        "long",
        "--steps",
        200,
        *toy_cli_args(toy),
    ]
    proc = accelerate(*long_args, port=free_port(), db=db, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline:
        long = [r for r in Store(db).runs() if r["name"] == "long"]
        if long and (long[0]["step"] or 0) >= 4:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the two-process run never reached step 4: " + proc.stdout.read().decode()[-3000:])
    rank1 = [p for p in _processes_of(db) if _env(p).get("RANK") == "1"]
    assert rank1, "no rank-1 worker found"
    os.kill(rank1[0], signal.SIGKILL)
    proc.wait(timeout=300)
    killed = runs.status("long", Store(db))
    assert killed["status"] in ("failed", "stopped", "interrupted") and killed["step"] < 200, killed["status"]
    done = accelerate("runs", "resume", "long", port=free_port(), db=db)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = Store(db).find_run("long")
    assert run["status"] == "finished" and run["step"] == 200
    assert Store(db).metrics_frame(run["id"])["step"].tolist() == list(range(201))  # none lost, none twice


@pytest.mark.timeout(600)
def test_two_processes_without_device_train_on_cpu_and_a_refused_run_is_one_line(toy, tmp_path):
    """--device auto on a machine without a GPU: resolved to CPU before the process group is joined (rank 1
    once died of a TypeError there); a run the main process refuses is one `error:` line, no rank's traceback."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: --device auto would pick it")
    db = tmp_path / "auto.db"
    args = ["train", "--engine", "trl", "--strategy", "grpo", "--steps", 1, "--eval-every", 0, "--name", "auto"]
    done = accelerate(*args, *toy_cli_args(toy), port=free_port(), db=db, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr and Store(db).find_run("auto")["status"] == "finished"
    again = accelerate(*args, *toy_cli_args(toy), port=free_port(), db=db, timeout=300)  # the name is taken
    assert again.returncode != 0
    errors = [line for line in (again.stdout + again.stderr).splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: --name 'auto'"), again.stderr[-3000:]
    assert "[rank0]" not in again.stderr and "[rank1]" not in again.stderr  # no rank printed a traceback


def _processes_of(db) -> list[int]:
    """Pids whose command line names this store (the launcher's workers may sit in sessions of their own)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(db) in cmdline:
                out.append(int(entry))
    return out


def _env(pid: int) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return {}
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_a_plan_phase_smaller_than_one_trl_batch_trains_all_its_queries_a_step_and_says_so(toy, store):
    """The defaults just work: 256 rollouts a step on a 40-query profile, each phase smaller than one TRL
    generation batch, trains each phase's queries at its G (a warning event per phase) instead of refusing."""
    pid = toy_profile(store, toy)
    cfg = toy_config(toy, engine="trl", strategy="sgpo", profile=str(pid), batch_rollouts=256, steps=2, eval_every=0)
    run = runs.create(cfg, store, name="small")
    phases = load(store.find_run(run["id"]), store).phases
    small = [ph for ph in phases if ph.count < 256 // ph.group_size]
    said = [e["message"] for e in store.events(run["id"]) if e["kind"] == "warning" and "TRL" in e["message"]]
    assert small and len(said) == len(small) and all("fewer than one TRL generation batch" in w for w in said)
    assert f"holds {small[0].count} queries" in said[0] and f"trains {small[0].count} prompts" in said[0]
    result = runs.start(run["id"], store)
    assert result["status"] == "finished" and result["steps"] == 2
    m = runs.metrics("small", store).iloc[1:]
    for (_, row), ph in zip(m.iterrows(), phases):  # one pass over each phase: one step, all its queries
        assert row["phase"] == ph.index and row["group_size"] == ph.group_size
        assert (
            row["queries"] == min(ph.count, 256 // ph.group_size) and row["rollouts"] == row["queries"] * ph.group_size
        )
