"""Data & profiles page: input checks, starting `sgpo profile` in the background (sgpo.profiles), the profile
list and the jobs, all with the status the library shows."""

import os
import sys
import time

import pytest

import sgpo.model
from bench.synthetic import fill_profile
from sgpo import launch, paths
from sgpo.store import Store
from tests.apps import Launched, app, errors, no_exception, raw_numbers

DEAD_PID = 2**22 + 12345  # no such process


@pytest.fixture
def launched(monkeypatch):
    """Records the workers sgpo.profiles.start would detach (argv, log) and starts none; the real starter
    policy (package data) resolves, so every check before the start is made for real."""
    rec = Launched()
    monkeypatch.setattr(launch, "detach", rec)
    return rec


def name_of(argv):
    return argv[argv.index("--name") + 1]


def start(at):
    at.button(key="start_profile").click().run()
    return at


def test_empty_store_shows_the_form_and_no_profiles(app_env):
    at = app()
    no_exception(at)
    assert at.title[0].value == "Data & profiles"
    assert at.selectbox(key="ds_builtin").value == "train"
    assert any("No profiles yet" in i.value for i in at.info)
    assert "sgpo profile builtin:train --model starter" in at.code[0].value


def test_an_empty_store_without_the_starter_policy_says_how_to_make_it(app_env, monkeypatch, tmp_path):
    monkeypatch.setattr(sgpo.model, "STARTER_DIR", tmp_path / "absent")
    monkeypatch.setenv("SGPO_AUTOPROFILE", "1")
    at = app()
    no_exception(at)
    assert any("sgpo starter train" in i.value for i in at.info), [i.value for i in at.info]


def test_start_profiling_launches_the_real_command_as_an_argument_list(app_env, launched):
    at = app()
    at.slider(key="samples").set_value(4)
    at.text_input(key="profile_name").input("first")
    start(at)
    no_exception(at)
    assert not errors(at)
    argv, log = launched[0]
    assert name_of(argv) == "first" and log == paths.job_log(app_env, "profile", "first")
    assert argv[1:4] == ["-m", "sgpo", "profile"] and argv[4] == "builtin:train"
    assert launch.cli_line(argv) in at.code[0].value.replace("\n", " ")  # what runs is the line shown
    assert argv[argv.index("--samples") + 1] == "4" and argv[argv.index("--db") + 1] == str(app_env)
    assert "--temperature" not in argv  # knobs left at their defaults are not spelt out


@pytest.mark.parametrize(
    "path, message", [("nope/missing.jsonl", "does not exist"), (".", "is not a file"), ("README.md", "unknown format")]
)
def test_bad_dataset_paths_show_an_error_and_start_nothing(app_env, launched, path, message):
    at = app()
    at.segmented_control(key="ds_source").set_value("local file").run()
    at.text_input(key="ds_path").input(path)
    start(at)
    no_exception(at)
    assert any(message in e for e in errors(at)), errors(at)
    assert not launched
    assert at.text_input(key="ds_path").value == path  # what was typed stays


def test_a_local_dataset_file_is_passed_as_an_absolute_path(app_env, launched, tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text('{"prompt": "1+1=", "answer": "2"}\n')
    at = app()
    at.segmented_control(key="ds_source").set_value("local file").run()
    at.text_input(key="ds_path").input(str(data))
    start(at)
    assert not errors(at)
    assert launched[0][0][4] == str(data.resolve())


def own_file(tmp_path):
    data = tmp_path / "mine.jsonl"
    rows = [f'{{"uid": "u{i}", "Question Text": "r a{i}b=", "gold": "b{i}a", "family": "f{i % 2}"}}' for i in range(30)]
    data.write_text("\n".join(rows) + "\n")
    return data


def map_fields(at, **fields):
    at.segmented_control(key="ds_source").set_value("local file").run()
    for key, value in fields.items():
        at.text_input(key=key).input(value)
    return at.run()


def test_the_local_file_form_maps_fields_and_names_the_reward_as_sgpo_profile_does(
    app_env, launched, tmp_path, monkeypatch
):
    data = own_file(tmp_path)
    (tmp_path / "scores.py").write_text("def same(completions, answer, **kw):\n    return [1.0] * len(completions)\n")
    monkeypatch.setenv("SGPO_ALLOWED_ROOTS", str(tmp_path))
    at = map_fields(
        app(),
        ds_path=str(data),
        ds_prompt_field="Question Text",
        ds_answer_field="gold",
        ds_id_field="uid",
        ds_task_field="family",
        ds_reward=f"{tmp_path / 'scores.py'}:same",
    )
    at.button(key="ds_check").click().run()
    assert not errors(at), errors(at)
    said = " ".join(c.value for c in at.caption)
    assert "30 rows; prompt <- Question Text, answer <- gold, id <- uid, task <- family" in said
    assert "scores.py:same: named with --reward" in said
    start(at)
    assert not errors(at), errors(at)
    argv = launched[0][0]
    assert (
        argv[argv.index("--prompt-field") + 1] == "Question Text" and argv[argv.index("--task-field") + 1] == "family"
    )
    assert argv[argv.index("--reward") + 1] == f"{tmp_path / 'scores.py'}:same"
    assert launch.cli_line(argv) in at.code[0].value.replace("\n", " ")  # what runs is the line shown


def test_a_reward_file_outside_the_dashboards_folders_is_refused_before_it_is_imported(
    app_env, launched, tmp_path, monkeypatch
):
    data = own_file(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "boom.py").write_text("raise SystemExit('imported')\n")
    monkeypatch.setenv("SGPO_ALLOWED_ROOTS", str(data.parent / "nothing-here"))
    at = map_fields(
        app(),
        ds_path=str(data),
        ds_prompt_field="Question Text",
        ds_answer_field="gold",
        ds_reward=f"{elsewhere}/boom.py:f",
    )
    no_exception(at)
    assert any("outside the folders this dashboard may read" in e for e in errors(at)), errors(at)
    assert not [b for b in at.button if b.key == "start_profile"]  # nothing can start with it
    at = map_fields(app(), ds_path=str(data), ds_reward="os:system")
    assert any("no file of its own to check" in e for e in errors(at)), errors(at)
    assert not launched


def test_missing_model_folder_and_taken_profile_name_are_refused(app_env, launched):
    fill_profile(Store(app_env), "taken", n=8)
    at = app()
    at.segmented_control(key="model_source").set_value("local folder").run()
    at.text_input(key="model_path").input("/no/such/model")
    start(at)
    assert any("neither 'starter'" in e for e in errors(at)), errors(at)
    at.segmented_control(key="model_source").set_value("starter").run()
    at.text_input(key="profile_name").input("taken")
    start(at)
    assert any("already exists" in e for e in errors(at)), errors(at)
    assert not launched


def test_stored_profiles_are_listed_with_cost(app_env):
    fill_profile(Store(app_env), "listed", n=16)
    at = app()
    no_exception(at)
    table = at.dataframe[0].value
    assert table["name"].tolist() == ["listed"]
    assert table["cost"].iloc[0] == "1.00 GFLOP" and table["queries"].iloc[0] == "16/16"
    assert not raw_numbers(at), raw_numbers(at)


def test_a_running_profile_shows_a_progress_bar(app_env):
    s = Store(app_env)
    s.create_profile({"name": "live", "key": "k", "status": "running", "queries_total": 100, "queries_done": 0})
    s.update_profile(1, queries_done=40, pid=os.getpid())  # written by a live process
    at = app()
    bars = at.get("progress")
    assert bars and bars[0].proto.value == 40 and "40/100" in bars[0].proto.text


def test_a_profile_whose_process_was_killed_shows_interrupted_and_no_running_progress_bar(app_env):
    s = Store(app_env)
    s.create_profile({"name": "killed", "key": "k", "status": "running", "queries_total": 100, "queries_done": 0})
    s.update_profile(1, queries_done=40, pid=DEAD_PID)  # stored as running by a process killed with kill -9
    log = paths.job_log(app_env, "profile", "killed")
    log.parent.mkdir(parents=True)
    log.write_text("profiling 40/100\nerror: CUDA out of memory\n")
    at = app()
    no_exception(at)
    assert not at.get("progress")
    assert at.dataframe[0].value.set_index("name").loc["killed", "status"] == "interrupted"
    assert any("killed is interrupted: error: CUDA out of memory" in e for e in errors(at)), errors(at)
    assert "interrupted 40/100" in at.sidebar.selectbox(key="profile_id").format_func(1)
    for page in ("audit", "plan"):  # every page reads the status the library shows
        other = app(page)
        assert any("profile killed is interrupted" in w.value for w in other.warning), [w.value for w in other.warning]
        assert not other.get("progress")


def test_the_jobs_panel_lists_what_the_store_records_whoever_started_it(app_env):
    s = Store(app_env)
    s.create_profile({"name": "from-cli", "key": "k1", "status": "running", "queries_total": 10, "queries_done": 0})
    s.update_profile(1, pid=os.getpid())  # a live worker this server never started (a CLI, another server)
    s.create_profile({"name": "killed", "key": "k2", "status": "running", "queries_total": 10, "queries_done": 3})
    s.update_profile(2, pid=DEAD_PID)
    at = app()
    no_exception(at)
    panel = [c.value for c in at.sidebar.caption]
    assert any(f"profile **from-cli** running (pid {os.getpid()})" in c for c in panel), panel
    assert any("killed is interrupted" in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
    s.update_profile(1, status="done", pid=None)  # it finished: the whole page reruns, the picker shows it done
    at.run()
    no_exception(at)
    assert any("profile **from-cli** done" in c.value for c in at.sidebar.caption)
    assert "running" not in at.sidebar.selectbox(key="profile_id").format_func(1)


def test_a_profile_worker_that_fails_before_writing_its_profile_shows_its_error_line(app_env, monkeypatch):
    def failing(argv, log):  # the worker runs, but a stand-in that fails the way `sgpo profile` reports it
        return real_detach([sys.executable, "-c", "import sys; print('error: no such dataset'); sys.exit(2)"], log)

    real_detach = launch.detach
    monkeypatch.setattr(launch, "detach", failing)
    at = app()
    at.text_input(key="profile_name").input("broken")
    start(at)
    assert not errors(at)
    deadline = time.time() + 60
    while launch.pid_alive(at.session_state["_profile_starts"]["broken"]["pid"]):
        assert time.time() < deadline
        time.sleep(0.1)
    at.run()
    assert any("broken did not start: error: no such dataset" in e for e in errors(at)), errors(at)


def test_first_start_with_an_empty_store_profiles_builtin_train_with_the_starter(app_env, launched, monkeypatch):
    monkeypatch.setenv("SGPO_AUTOPROFILE", "1")
    at = app()
    no_exception(at)
    assert len(launched) == 1
    argv, _ = launched[0]
    assert name_of(argv) == "starter-train" and argv[4:7] == ["builtin:train", "--model", "starter"]
    at.run()
    assert len(launched) == 1  # once per server and store, not once per rerun
    assert app().session_state["_profile_starts"]  # a second session sees it loading too
    assert len(launched) == 1


def test_an_unreadable_store_is_an_error_message_not_a_traceback(app_env):
    app_env.write_bytes(b"this is not a database" * 100)
    at = app()
    no_exception(at)
    assert any("database" in e for e in errors(at)), errors(at)
