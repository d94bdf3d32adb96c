"""Model specs: a run's checkpoint (`run:NAME[@STEP]`) is a model that can be profiled like any other."""

import json
from pathlib import Path

import pytest

import sgpo.model
from sgpo.errors import ModelError
from sgpo.model import check_spec, resolve_model
from sgpo.runs import train
from sgpo.store import Store
from tests.toys import toy_config


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    db = tmp_path_factory.mktemp("ckpt") / "sgpo.db"
    train(toy_config(toy, steps=4, checkpoint_every=2, eval_every=0), Store(db), name="r")
    return db


def test_a_run_checkpoint_resolves_by_step_and_latest(trained):
    at2 = resolve_model("run:r@2", trained)
    latest = resolve_model("run:r", trained)
    assert at2.path.name == "step-000002" and latest.path.name == "step-000004"
    assert at2.weights_hash != latest.weights_hash and at2.spec == "run:r@2"
    assert check_spec("run:r@4", trained) == "run:r@4"  # passed on as written: the other process resolves it


@pytest.mark.parametrize(
    "spec, message",
    [("run:r@3", "keeps steps 2, 4"), ("run:ghost", "no checkpoint"), ("run:r@x", "no checkpoint at step x")],
)
def test_a_missing_checkpoint_is_named(trained, spec, message):
    with pytest.raises(ModelError, match=message):
        resolve_model(spec, trained)


def test_sgpo_profile_measures_a_checkpoint_of_a_run(trained, toy, cli):
    code, out, err = cli(
        "profile", toy.data, "--model", "run:r@2", "--samples", 2, "--max-new-tokens", 1, "--db", trained, "--json"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"]["spec"] == "run:r@2" and summary["queries"] == 40


def test_the_starter_is_package_data_and_a_missing_one_says_how_to_get_another(monkeypatch, tmp_path):
    ref = resolve_model("starter")
    assert ref.path == Path(sgpo.__file__).resolve().parent / "starter" / "policy" and ref.n_params == 1_790_208
    monkeypatch.setattr(sgpo.model, "STARTER_DIR", tmp_path / "absent")
    with pytest.raises(ModelError, match=r"reinstall sgpo, or train one with `sgpo starter train --out DIR`"):
        check_spec("starter")


@pytest.mark.parametrize("spec", ["hf:Qwen/Qwen2.5-0.5B", "hf:org/name@main", "org/name"])
def test_a_hub_model_is_accepted_as_hf_org_name_as_the_readme_writes_it_and_kept_as_written(spec):
    assert check_spec(spec) == spec


@pytest.mark.parametrize("spec", ["hf:justaname", "hf:org/name@", "hf:", "hf:a/b/c"])
def test_a_malformed_hub_model_is_refused_saying_how_to_write_it(spec):
    with pytest.raises(ModelError, match="hf:ORG/NAME"):
        check_spec(spec)


def test_an_hf_model_is_fetched_by_its_repo_and_revision(monkeypatch, tmp_path):
    fetched = []

    def download(repo_id, revision=None, **kw):
        fetched.append((repo_id, revision))
        raise OSError("offline")

    monkeypatch.setattr(sgpo.model, "snapshot_download", download)
    with pytest.raises(ModelError, match="could not fetch model 'org/name'"):
        resolve_model("hf:org/name@v1")
    assert fetched == [("org/name", "v1")]
