"""Checkpoints under faults: a truncated or corrupt latest checkpoint falls back to the previous one with
a warning; a full disk or a store that turns read-only mid-run stops the run with one line and its last
checkpoint intact, and resuming then ends exactly where an uninterrupted run ends (CPU, bit for bit)."""

from __future__ import annotations

import errno
import resource
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from sgpo.paths import checkpoint_root
from sgpo.runs import resume, train
from sgpo.store import Store
from sgpo.train import checkpoint
from sgpo.train.checkpoint import CheckpointError, checkpoint_problem, latest_checkpoint
from sgpo.train.loop import Trainer
from sgpo.train.native import NativeEngine
from sgpo.train.setup import load, prepare
from tests.toys import toy_cli_args, toy_config

CFG = dict(steps=6, eval_every=3, checkpoint_every=2)  # checkpoints at steps 2, 4 and 6
COLS = ["reward_mean", "loss", "grad_norm", "entropy", "flops_total", "wasted_rollouts", "run_wasted_fraction"]


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k].numpy(), wb[k].numpy()) for k in wa)


@pytest.fixture(scope="module")
def straight(toy, tmp_path_factory):
    """The uninterrupted run every faulty one must end up equal to."""
    store = Store(tmp_path_factory.mktemp("straight") / "sgpo.db")
    result = train(toy_config(toy, **CFG), store, name="x")
    return {
        "result": result,
        "metrics": store.metrics_frame(result["run_id"]),
        "evals": store.evals_frame(result["run_id"]),
    }


def _assert_matches(straight, store: Store, result: dict) -> None:
    assert result["status"] == "finished" and result["steps"] == 6
    assert _same_weights(Path(straight["result"]["checkpoint"]), Path(result["checkpoint"]))
    m = store.metrics_frame(result["run_id"])
    assert m["step"].tolist() == list(range(7))  # no gap, no duplicate
    np.testing.assert_array_equal(straight["metrics"][COLS].to_numpy(float), m[COLS].to_numpy(float))
    assert store.evals_frame(result["run_id"])["accuracy"].tolist() == straight["evals"]["accuracy"].tolist()


def _stopped_at_4(toy, folder: Path, stop_after) -> Store:
    """Stopped after step 4 as SIGTERM would stop it: checkpoints at 2 and 4 are on disk."""
    store = Store(folder / "sgpo.db")
    prep = prepare(toy_config(toy, **CFG), store, name="x")
    trainer = Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda m: None)
    assert stop_after(trainer, 4).run()["steps"] == 4
    return store


@pytest.fixture(scope="module")
def two_checkpoints(toy, tmp_path_factory, stop_after) -> Path:
    store = _stopped_at_4(toy, tmp_path_factory.mktemp("two"), stop_after)
    root = checkpoint_root(store, "x")
    assert sorted(p.name for p in root.glob("step-*")) == ["step-000002", "step-000004"]
    return root


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


CORRUPTIONS = {
    "weights truncated": lambda c: _truncate(c / "model.safetensors"),
    "weights one byte short": lambda c: _truncate(c / "model.safetensors", keep=1 - 1e-9),
    "weights missing": lambda c: (c / "model.safetensors").unlink(),
    "state.json invalid": lambda c: (c / "state.json").write_text('{"step": 4, "counters": {'),
    "state.json empty": lambda c: (c / "state.json").write_text(""),
    "optimizer truncated": lambda c: _truncate(c / "optimizer.pt"),
    "optimizer missing": lambda c: (c / "optimizer.pt").unlink(),
    "folder missing": lambda c: shutil.rmtree(c),
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_one_with_a_warning(two_checkpoints, tmp_path, corrupt):
    root = shutil.copytree(two_checkpoints, tmp_path / "x")
    assert latest_checkpoint(root, warn=pytest.fail) == root / "step-000004"  # intact: no warning
    CORRUPTIONS[corrupt](root / "step-000004")
    warnings: list[str] = []
    assert latest_checkpoint(root, warn=warnings.append) == root / "step-000002"
    assert len(warnings) == 1 and "step-000004" in warnings[0] and "resuming from step-000002" in warnings[0]
    with pytest.warns(UserWarning, match="step-000004"):  # without a callback: a Python warning
        latest_checkpoint(root)


def test_with_no_complete_checkpoint_left_the_run_starts_from_step_0(two_checkpoints, tmp_path):
    root = shutil.copytree(two_checkpoints, tmp_path / "x")
    _truncate(root / "step-000004" / "model.safetensors")
    (root / "step-000002" / "state.json").write_text("")
    warnings: list[str] = []
    assert latest_checkpoint(root, warn=warnings.append) is None
    assert len(warnings) == 2 and all("starting from step 0" in w for w in warnings)
    assert latest_checkpoint(tmp_path / "none", warn=pytest.fail) is None


def test_a_run_whose_latest_checkpoint_is_truncated_resumes_from_the_previous_one_and_ends_the_same(
    toy, tmp_path, straight, stop_after
):
    store = _stopped_at_4(toy, tmp_path, stop_after)
    _truncate(checkpoint_root(store, "x") / "step-000004" / "model.safetensors")
    result = resume("x", store, log=lambda m: None)
    _assert_matches(straight, store, result)
    messages = [(e["kind"], e["message"]) for e in store.events(result["run_id"])]
    assert any(kind == "warning" and "step-000004" in msg and "corrupt" in msg for kind, msg in messages)
    assert ("resume", "resumed from step-000002 (step 2)") in messages


# full disk ---------------------------------------------------------------------------------------
def _no_space(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\0" * 100)  # half a checkpoint on disk, then the disk is full
    raise OSError(errno.ENOSPC, "No space left on device", str(folder / "optimizer.pt"))


def _file_size_limit(folder: Path, save) -> None:
    """A real short write: the process may not write files over 4 KiB (what safetensors sees on a full disk)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        save(folder)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("fault", ["ENOSPC", "file size limit"])
def test_a_full_disk_at_the_second_checkpoint_stops_the_run_with_the_first_intact(
    toy, tmp_path, straight, monkeypatch, fault
):
    real_save, calls = NativeEngine.save, []

    def save(engine, folder):
        calls.append(folder)
        if len(calls) != 2:
            return real_save(engine, folder)
        if fault == "ENOSPC":
            return _no_space(folder)
        return _file_size_limit(folder, lambda f: real_save(engine, f))

    monkeypatch.setattr(NativeEngine, "save", save)
    store = Store(tmp_path / "sgpo.db")
    with pytest.raises(CheckpointError) as info:
        train(toy_config(toy, **CFG), store, name="x", log=lambda m: None)
    message = str(info.value)
    assert "\n" not in message and "step-000004" in message and "step-000002" in message
    assert "sgpo runs resume x" in message
    root = checkpoint_root(store, "x")
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-000002"]  # no half-written folder
    assert (root / "latest").read_text() == "step-000002" and checkpoint_problem(root / "step-000002") is None
    run = store.find_run("x")
    assert run["status"] == "failed" and run["step"] == 4
    assert store.events(run["id"])[-1]["message"] == message

    monkeypatch.setattr(NativeEngine, "save", real_save)  # space freed
    _assert_matches(straight, store, resume("x", store, log=lambda m: None))


def test_a_failed_pointer_write_keeps_latest_on_the_previous_checkpoint(two_checkpoints, tmp_path, monkeypatch):
    root = shutil.copytree(two_checkpoints, tmp_path / "x")

    class Engine:
        def save(self, folder):
            shutil.copytree(root / "step-000004", folder, dirs_exist_ok=True)

    real_write = Path.write_text

    def write_text(path, text, *a, **kw):
        if path.name == ".latest.tmp":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, text, *a, **kw)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(CheckpointError, match="`latest` still names the previous checkpoint"):
        checkpoint.save_checkpoint(root, 6, Engine(), {"counters": {}})
    assert (root / "latest").read_text() == "step-000004" and not (root / ".latest.tmp").exists()
    assert not list(root.glob(".tmp-*"))


# a store that turns read-only or full mid-run ---------------------------------------------------
STORE_FAULTS = {
    "read-only": lambda db: db.execute("PRAGMA query_only = ON"),  # what SQLite says on a read-only file
    "full": lambda db: db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}"),
}


@pytest.mark.parametrize("fault", STORE_FAULTS)
def test_a_store_that_fails_mid_run_stops_it_with_one_line_and_the_checkpoint_intact(
    toy, tmp_path, straight, cli, monkeypatch, fault
):
    real_log_step = Store.log_step

    def log_step(store, run_id, step, *a, **kw):
        if step == 3:
            STORE_FAULTS[fault](store.db)
        return real_log_step(store, run_id, step, *a, **kw)

    monkeypatch.setattr(Store, "log_step", log_step)
    db = tmp_path / "sgpo.db"
    code, out, err = cli(
        "train",
        "--strategy",
        "grpo",
        "--steps",
        6,
        "--eval-every",
        3,
        "--checkpoint-every",
        2,
        *toy_cli_args(toy),
        "--name",
        "x",
        "--db",
        db,
    )
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(lines) == 1
    assert "run 'x' stopped at step" in lines[0] and "could not write to" in lines[0] and "step-0000" in lines[0]
    store = Store(db)
    root = checkpoint_root(store, "x")
    kept = latest_checkpoint(root, warn=pytest.fail)
    assert kept is not None and kept.name in lines[0] and checkpoint_problem(kept) is None
    assert not list(root.glob(".tmp-*"))

    monkeypatch.setattr(Store, "log_step", real_log_step)  # the store is writable again
    _assert_matches(straight, store, resume("x", store, log=lambda m: None))


def test_a_kill_after_the_last_checkpoint_still_ends_with_the_final_evaluation(toy, tmp_path):
    """The checkpoint of the last step carries what the final evaluation needs (found by bench/chaos.py)."""
    store = Store(tmp_path / "db" / "sgpo.db")
    prep = prepare(toy_config(toy, steps=6, eval_every=4, checkpoint_every=2), store, name="e")
    run_id = store.create_run(**prep.run_row())
    trainer = Trainer(load(store.find_run(run_id), store), store, run_id, log=lambda msg: None)
    real = trainer.evaluator.evaluate

    def killed_in_final_eval(step):
        if step == 6:
            raise KeyboardInterrupt("killed")  # as if SIGKILL landed in the final evaluation
        return real(step)

    trainer.evaluator.evaluate = killed_in_final_eval
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    result = resume("e", store)
    assert store.evals_frame(run_id)["step"].tolist() == [0, 4, 6]
    assert result["eval_accuracy"] == pytest.approx(store.evals_frame(run_id)["accuracy"].iloc[-1])


def test_save_run_keeps_every_parts_state_and_restore_run_hands_each_its_own(tmp_path):
    """A checkpoint holds the engine's files and the merged state of every part; restoring gives each part
    the state and returns the step."""
    import torch

    class Part:
        def __init__(self, key, value=None):
            self.key, self.value, self.loaded = key, value, None

        def state_dict(self):
            return {self.key: self.value}

        def load_state_dict(self, state):
            self.loaded = state[self.key]

    class Engine(Part):
        def save(self, folder):
            (folder / "model.safetensors").write_bytes(b"weights")
            torch.save({"optimizer": {}}, folder / "optimizer.pt")

        def load(self, folder):
            self.files = (folder / "model.safetensors").read_bytes()

    engine, session, evaluator = Engine("sampler", {"cursor": 3}), Part("counters", {"rollouts": 8}), Part("bands", [1])
    path = checkpoint.save_run(tmp_path, 7, engine, [session, evaluator, engine])
    assert path.name == "step-000007" and (tmp_path / "latest").read_text() == "step-000007"
    again = Engine("sampler"), Part("counters"), Part("bands")
    assert checkpoint.restore_run(path, again[0], list(again)) == 7
    assert [p.loaded for p in again] == [{"cursor": 3}, {"rollouts": 8}, [1]] and again[0].files == b"weights"
