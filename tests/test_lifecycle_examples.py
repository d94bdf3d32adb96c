"""The lifecycle modules' examples run: the usage block at the top of sgpo/profiles.py, sgpo/plans.py and
sgpo/compare.py and the example in every public function's docstring, against one store holding the starter's
profiles of a few built-in queries, a run with a checkpoint (the starter's weights), and synthetic runs."""

from __future__ import annotations

import ast
import inspect
import json
import shutil
import textwrap
import time
import zipfile

import pytest

from bench.synthetic import fill_long_run
from sgpo import compare, launch, paths, plans, profiles
from sgpo.errors import StoreError
from sgpo.model import STARTER_DIR
from sgpo.plan import PlanConfig
from sgpo.profile import ProfileConfig
from sgpo.store import Store
from sgpo.train import TrainConfig

MODULES = (profiles, plans, compare)


def examples(text: str | None) -> str:
    """The code of a docstring's examples: a module's indented usage block, a function's `>>>` lines."""
    lines = (text or "").splitlines()
    prompts = [ln.strip()[4:] for ln in lines if ln.strip().startswith(">>> ")]
    return "\n".join(prompts or [ln[4:] for ln in lines if ln.startswith("    ") and ln.strip()])


def raw_doc(obj) -> str | None:
    """The docstring as written (Python 3.13 strips a docstring's indentation when it compiles it)."""
    return ast.get_docstring(ast.parse(textwrap.dedent(inspect.getsource(obj))).body[0], clean=False)


def public_functions(module) -> list:
    found = [
        f
        for name, f in vars(module).items()
        if inspect.isfunction(f) and f.__module__ == module.__name__ and not name.startswith("_")
    ]
    return sorted(found, key=lambda f: f.__code__.co_firstlineno)


def interrupt(store: Store, name: str, keep: int) -> None:
    """Leave profile `name` as a process killed after `keep` queries leaves it (no cleanup ran)."""
    row = store.find_profile(name)
    with store.transaction():
        store.db.conn.execute("DELETE FROM profile_queries WHERE profile_id = ? AND position >= ?", [row["id"], keep])
    store.update_profile(row["id"], status="running", queries_done=keep, pid=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory, one_thread):
    tmp = tmp_path_factory.mktemp("lifecycles")
    store = Store(tmp / "sgpo.db")
    for seed in range(2):  # synthetic runs for compare: two settings, two seeds each (ids 1-4)
        for strategy in ("grpo", "sgpo"):
            config = {"strategy": strategy, "seed": seed, "lr": 5e-5, "dataset": "builtin:train"}
            fill_long_run(store, f"{strategy}-s{seed}", strategy, steps=120, seed=seed, eval_every=10, config=config)
    first = profiles.start("builtin:train", "starter", ProfileConfig(samples=2, limit=24), store, name="first")
    profiles.start("builtin:train", "starter", ProfileConfig(samples=2, limit=16, batch_size=8), store, name="half")
    run = store.create_run(
        name="baseline", strategy="grpo", config={"dataset": "builtin:train"}, profile_id=first["profile_id"]
    )
    store.update_run(run, status="finished")
    gauge = {"noise_g2": 1.0, "noise_trace": 40.0, "noise_scale_informative": 40.0, "noise_scale_rollouts": 80.0}
    for step in range(1, 26):  # a critical-batch gauge for plans.recommend's examples to read
        store.log_step(run, step, 0, 0.1 * step, {"rollouts": 256, "wasted_rollouts": 128, **gauge})
    folder = paths.checkpoint_root(store, "baseline") / "step-000002"  # the starter's weights, as a checkpoint
    shutil.copytree(STARTER_DIR, folder)
    (folder / "state.json").write_text(json.dumps({"step": 2}))
    with zipfile.ZipFile(folder / "optimizer.pt", "w") as z:
        z.writestr("optimizer/data.pkl", b"")
    return store, tmp


def test_every_public_function_of_the_lifecycle_modules_has_an_example():
    for module in MODULES:
        assert examples(module.__doc__), module.__name__
        for f in public_functions(module):
            assert examples(raw_doc(f)), f"{module.__name__}.{f.__name__} has no example"


def test_the_lifecycle_examples_run_against_a_real_store(world):
    store, tmp = world
    namespace = {
        "store": store,
        "tmp": tmp,
        "profiles": profiles,
        "plans": plans,
        "compare": compare,
        "launch": launch,
        "ProfileConfig": ProfileConfig,
        "PlanConfig": PlanConfig,
        "TrainConfig": TrainConfig,
    }
    for module in MODULES:
        if module is profiles:
            interrupt(store, "half", 8)
        exec(compile(examples(module.__doc__), f"{module.__name__} (module example)", "exec"), namespace)
        for f in public_functions(module):
            if f is profiles.resume:
                interrupt(store, "half", 8)
            code = examples(raw_doc(f))
            exec(compile(code, f"{module.__name__}.{f.__name__} (example)", "exec"), namespace)
    # what the examples made: a resumed profile, a checkpoint's profile, a saved plan and two exports
    assert profiles.status("half", store)["status"] == "done" and store.find_profile("half")["queries_done"] == 16
    assert store.find_profile("baseline-step2")["model_spec"] == "run:baseline@2"
    assert profiles.drift("first", "baseline-step2", store)["change"].abs().max() == 0  # the same weights
    assert {p["name"] for p in plans.list_plans(store)} >= {"easy-first", "defaults"}
    assert (tmp / "trl-plan" / "manifest.json").exists() and (tmp / "verl-plan" / "manifest.json").exists()
    deadline = time.time() + 120  # the detached profile: the real `sgpo profile` in a worker process

    def bg() -> dict:
        try:
            return profiles.status("bg", store)
        except StoreError:  # its worker has not created the profile yet
            return {"status": "starting"}

    while bg()["status"] in ("starting", "running") and time.time() < deadline:
        time.sleep(0.5)
    shown = bg()
    assert shown["status"] == "done" and shown["queries_done"] == 8, profiles.log("bg", store)
    assert "profiling" in profiles.log("bg", store)
