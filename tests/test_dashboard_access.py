"""Safe to expose: local paths typed into the dashboard stay inside the allowed roots (sgpo.paths), and a
dashboard bound beyond loopback answers only sessions that bring its token (dashboard/access.py)."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from bench.synthetic import fill_profile, fill_run
from dashboard import access, state
from sgpo import paths
from sgpo.cli.dashboard import TOKEN_ENV
from sgpo.errors import ConfigError
from sgpo.profile import ProfileConfig
from sgpo.store import Store
from sgpo.train import TrainConfig
from tests.apps import APP, no_exception


def test_a_path_inside_an_allowed_root_is_resolved_and_one_outside_is_refused_in_one_line(tmp_path):
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.jsonl").write_text("{}\n")
    assert paths.check_allowed(root / "data" / "train.jsonl", [root]) == (root / "data" / "train.jsonl").resolve()
    with pytest.raises(ConfigError) as refused:
        paths.check_allowed("/etc/passwd", [root])
    message = str(refused.value)
    assert "\n" not in message and "/etc/passwd" in message and "--allow-root" in message


def test_dot_dot_and_symlinks_out_of_a_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_text("{}\n")
    (root / "link.jsonl").symlink_to(outside / "secret.jsonl")
    for path in (root / ".." / "outside" / "secret.jsonl", root / "link.jsonl"):
        with pytest.raises(ConfigError):
            paths.check_allowed(path, [root])


def test_the_roots_come_from_the_environment_else_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.ALLOWED_ROOTS_ENV, raising=False)
    assert paths.allowed_roots() == [tmp_path.resolve()]
    monkeypatch.setenv(paths.ALLOWED_ROOTS_ENV, os.pathsep.join(["/srv/a", "/srv/b"]))
    assert paths.allowed_roots() == [paths.Path("/srv/a"), paths.Path("/srv/b")]


def test_only_specs_naming_local_files_are_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roots = [tmp_path]
    for spec, kind in (
        ("builtin:train", "dataset"),
        ("hf:openai/gsm8k:main:train", "dataset"),
        ("starter", "model"),
        ("run:base@40", "model"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "model"),
        ("data/train.jsonl", "dataset"),
    ):
        assert paths.check_spec_allowed(spec, kind, roots) == spec
    for spec, kind in (("/etc/passwd", "dataset"), ("/usr", "model"), ("../elsewhere", "model")):
        with pytest.raises(ConfigError):
            paths.check_spec_allowed(spec, kind, roots)


# the token ----------------------------------------------------------------------------------------------
def widgets_of(at) -> int:
    """How many input widgets the page built."""
    kinds = ("button", "selectbox", "multiselect", "slider", "text_input", "number_input", "toggle", "checkbox")
    return sum(len(at.get(kind)) for kind in kinds)


@pytest.fixture
def guarded(app_env, monkeypatch):
    """A store with a profile and a run, and a server that asks for TOKEN."""
    s = Store(app_env)
    fill_profile(s, "p", n=24)
    fill_run(s, "r", "grpo", steps=3)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    return app_env


TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.mark.parametrize("given", [None, "wrong", TOKEN[:-1], TOKEN + "x"])
def test_without_the_right_token_a_session_sees_one_line_and_no_page(guarded, given):
    at = AppTest.from_file(APP, default_timeout=60)
    if given is not None:
        at.query_params["token"] = given
    at.run()
    no_exception(at)
    assert [e.value for e in at.error] == [
        "Wrong access token: open the URL `sgpo dashboard` printed (…/?token=…)."
        if given
        else "This dashboard needs its access token: open the URL `sgpo dashboard` printed (…/?token=…)."
    ]
    assert widgets_of(at) == 0 and not at.title and not at.sidebar.children


def test_with_the_right_token_every_page_runs_and_the_session_stays_in(guarded):
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["token"] = TOKEN
    at.run()
    no_exception(at)
    assert not at.error and widgets_of(at) > 0
    for page in ("audit", "plan", "train", "rollouts", "queries", "compare"):
        at.query_params.clear()  # a page switched to in the session carries no token: the session is in
        at.switch_page(f"views/{page}.py").run()
        no_exception(at)
        assert at.title[0].value.lower().startswith(page[:4]), page


def test_links_that_open_a_new_session_carry_the_token(guarded):
    assert access.link_params() == {"token": TOKEN}


def test_tokens_compare_in_constant_time_through_hmac(monkeypatch):
    seen = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(access.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    assert access.matches(TOKEN, TOKEN) and not access.matches("x", TOKEN) and not access.matches(None, TOKEN)
    assert len(seen) == 2


# sgpo dashboard --------------------------------------------------------------------------------------------
@pytest.fixture
def execs(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    return calls


def test_beyond_loopback_a_token_is_made_and_printed_once_in_the_url(cli, execs, db_path):
    code, out, err = cli("dashboard", "--db", db_path, "--address", "0.0.0.0", "--port", "9000")
    assert code == 0, err
    token = execs[0][2][TOKEN_ENV]
    assert len(token) >= 32 and err.count(token) == 1 and f"http://0.0.0.0:9000/?token={token}" in err
    cli("dashboard", "--db", db_path, "--address", "0.0.0.0")
    assert execs[1][2][TOKEN_ENV] != token  # a new one each start


def test_a_token_can_be_given_by_option_or_environment_and_is_not_printed(cli, execs, db_path, monkeypatch):
    cli("dashboard", "--db", db_path, "--address", "0.0.0.0", "--token", TOKEN)
    code, out, err = cli("dashboard", "--db", db_path, "--address", "0.0.0.0", "--token", TOKEN)
    assert execs[0][2][TOKEN_ENV] == TOKEN and TOKEN not in err and "token required" in err
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    cli("dashboard", "--db", db_path, "--address", "0.0.0.0")
    assert execs[-1][2][TOKEN_ENV] == TOKEN


def test_on_loopback_no_token_is_asked_unless_given(cli, execs, db_path):
    cli("dashboard", "--db", db_path)
    assert TOKEN_ENV not in execs[0][2]
    cli("dashboard", "--db", db_path, "--token", TOKEN)
    assert execs[1][2][TOKEN_ENV] == TOKEN


def test_a_short_token_is_refused_naming_the_option(cli, execs, db_path):
    code, _, err = cli("dashboard", "--db", db_path, "--address", "0.0.0.0", "--token", "short")
    assert code == 2 and not execs and "--token" in err


def test_allowed_roots_default_to_the_working_folder_and_are_handed_to_the_server(
    cli, execs, db_path, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cli("dashboard", "--db", db_path)
    assert execs[0][2][paths.ALLOWED_ROOTS_ENV] == str(tmp_path.resolve())
    (tmp_path / "a").mkdir()
    cli(
        "dashboard",
        "--db",
        db_path,
        "--allow-root",
        tmp_path / "a",
        "--allow-root",
        "/srv" if os.path.isdir("/srv") else "/tmp",
    )
    assert execs[1][2][paths.ALLOWED_ROOTS_ENV].split(os.pathsep)[0] == str((tmp_path / "a").resolve())
    code, _, err = cli("dashboard", "--db", db_path, "--allow-root", tmp_path / "missing")
    assert code == 2 and "--allow-root" in err and len(execs) == 2


# the dashboard's actions -----------------------------------------------------------------------------------
def test_profiling_or_training_on_a_path_outside_the_roots_is_refused_in_one_line(app_env, tmp_path, monkeypatch):
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    monkeypatch.setenv(paths.ALLOWED_ROOTS_ENV, str(inside))
    with pytest.raises(ConfigError, match="outside the folders"):
        state.start_profile(str(outside / "secret.jsonl"), "starter", ProfileConfig(), "p")
    with pytest.raises(ConfigError, match="outside the folders"):
        state.start_profile("builtin:train", str(outside), ProfileConfig(), "p")
    cfg = TrainConfig(strategy="grpo", eval_dataset=str(outside / "secret.jsonl"))
    with pytest.raises(ConfigError, match="outside the folders"):
        state.launch_run(cfg, "r")
    assert not Store(app_env).runs() and not Store(app_env).profiles()  # nothing started, nothing written
