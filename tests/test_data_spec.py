"""A dataset named once with its field mapping and reward, loaded the same way by every later command."""

import json

import pytest

from sgpo.data import DatasetSpec, load_dataset, profiled_dataset, recall
from sgpo.errors import DataError
from sgpo.store import Store

ROWS = [
    {
        "uid_str": f"u{i}",
        "Question Text": f"r {w}=",
        "gold_label": w[::-1],
        "category": cat,
        "hardness": f"Level {i % 3}",
    }
    for i, (w, cat) in enumerate([("abc", "reverse"), ("hello", "reverse"), ("xy", "short"), ("pqrs", "short")])
]
MAPPING = dict(prompt_field="Question Text", answer_field="gold_label", id_field="uid_str")


@pytest.fixture
def unusual(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_every_field_is_mappable_and_the_load_returns_the_mapping_it_used(unusual):
    ds = load_dataset(DatasetSpec(str(unusual), task_field="category", difficulty_field="hardness", **MAPPING))
    assert ds.frame["task"].tolist() == ["reverse", "reverse", "short", "short"]  # not "default"
    assert ds.frame["difficulty"].tolist() == [0, 1, 2, 0] and ds.frame["id"].tolist() == ["u0", "u1", "u2", "u3"]
    assert ds.mapping == DatasetSpec(
        str(unusual), task_field="category", difficulty_field="hardness", reward="exact", **MAPPING
    )
    assert ds.difficulty_counts() == {"reverse": {"0": 1, "1": 1}, "short": {"0": 1, "2": 1}}


def test_detected_fields_are_written_into_the_mapping(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text('{"question": "1+1=", "answer": "2", "level": "3", "task": "sum"}\n')
    mapping = load_dataset(str(path)).mapping
    assert (mapping.prompt_field, mapping.answer_field, mapping.id_field) == ("question", "answer", None)
    assert (mapping.task_field, mapping.difficulty_field, mapping.reward) == ("task", "level", "math")


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("prompt_field", "Question", r"no field 'Question' to use as the prompt \(--prompt-field\); its fields are"),
        ("id_field", "uid", r"no field 'uid' to use as the id \(--id-field\)"),
        ("task_field", "cat", r"no row has the field 'cat' to use as the task \(--task-field\)"),
        ("difficulty_field", "level", r"no row has the field 'level' to use as the difficulty"),
    ],
)
def test_a_mapped_field_the_file_lacks_is_one_line_naming_the_field_and_the_file(unusual, option, value, message):
    with pytest.raises(DataError, match=r"^dataset .*mine\.jsonl: " + message) as caught:
        load_dataset(DatasetSpec(str(unusual), **{**MAPPING, option: value}))
    assert "'Question Text'" in str(caught.value) and "\n" not in str(caught.value)


def test_a_mapping_recorded_once_is_read_back_by_a_later_load_from_another_folder(unusual, tmp_path, monkeypatch):
    store = Store(tmp_path / "sgpo.db")
    monkeypatch.chdir(unusual.parent)
    first = load_dataset(DatasetSpec("mine.jsonl", task_field="category", reward="math-lenient", **MAPPING))
    store.record_dataset(**first.record())
    monkeypatch.chdir(tmp_path.parent)  # a relative spelling elsewhere, or the absolute path, finds it
    again = load_dataset(recall(store, str(unusual)))
    assert again.hash == first.hash and again.reward == "math-lenient" and again.frame.equals(first.frame)
    assert recall(store, str(unusual), reward="exact").reward == "exact"  # what is given now wins, field by field
    assert recall(None, str(unusual)) == DatasetSpec(str(unusual))


def test_a_profile_loads_its_dataset_exactly_as_profiled_and_refuses_changed_rows(unusual, tmp_path):
    store = Store(tmp_path / "sgpo.db")
    ds = load_dataset(DatasetSpec(str(unusual), task_field="category", **MAPPING))
    store.record_dataset(**ds.record())
    row = {"name": "mine8", "dataset_hash": ds.hash, "dataset_spec": str(unusual)}
    assert profiled_dataset(store, row).frame.equals(ds.frame)
    unusual.write_text("".join(json.dumps({**r, "gold_label": "changed"}) + "\n" for r in ROWS))
    with pytest.raises(DataError, match=r"now gives other rows or another reward .* profile 'mine8' measured"):
        profiled_dataset(store, row)


def test_the_latest_mapping_of_a_spec_wins_and_hash_lookup_is_exact(unusual, tmp_path):
    store = Store(tmp_path / "sgpo.db")
    plain = load_dataset(DatasetSpec(str(unusual), **MAPPING))
    tasks = load_dataset(DatasetSpec(str(unusual), task_field="category", **MAPPING))
    store.record_dataset(**plain.record())
    store.record_dataset(**tasks.record())
    assert store.dataset_mapping(spec=str(unusual))["task_field"] == "category"
    assert store.dataset_mapping(hash=plain.hash)["task_field"] is None
    assert store.dataset_mapping(hash="nothing") is None and store.dataset_mapping(spec="builtin:train") is None


def test_a_spec_round_trips_and_names_its_own_options():
    spec = DatasetSpec("d.csv", prompt_field="Q A", task_field="cat", reward="my_rewards:score")
    assert DatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.cli_args() == ["--prompt-field", "Q A", "--task-field", "cat", "--reward", "my_rewards:score"]
    assert DatasetSpec.of("d.csv", reward=None, id_field="k") == DatasetSpec("d.csv", id_field="k")
    assert DatasetSpec("d.csv", reward="exact").over({"spec": "x", "reward": "math", "id_field": "k"}) == DatasetSpec(
        "d.csv", id_field="k", reward="exact"
    )


def test_builtin_data_records_its_fixed_mapping():
    mapping = load_dataset("builtin:rev-train").mapping
    assert mapping.task_field == "task" and mapping.difficulty_field == "difficulty" and mapping.reward == "exact"
