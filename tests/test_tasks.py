import json
import random
from pathlib import Path

from sgpo.data import load_dataset
from sgpo.tasks.builtin import DATA_DIR, generate_splits
from sgpo.tasks.families import FAMILIES, sample


def test_every_family_answers_its_own_instances_correctly():
    rng = random.Random(0)
    for _ in range(200):
        prompt, answer, level = sample("add", rng)
        a, b = prompt[:-1].split("+")
        assert answer == str(int(a) + int(b))[::-1] and len(a) == level
        prompt, answer, level = sample("rev", rng)
        assert answer == prompt[2:-1][::-1] and len(answer) == level
        prompt, answer, _ = sample("count", rng)
        _, letter, text = prompt[:-1].split(" ")
        assert int(answer) == text.count(letter)
        prompt, answer, _ = sample("sort", rng)
        assert answer == "".join(sorted(prompt[2:-1]))


def test_shipped_splits_are_the_seeded_generator_output():
    fresh = generate_splits()
    for split, rows in fresh.items():
        shipped = [json.loads(line) for line in (DATA_DIR / f"{split}.jsonl").open()]
        assert shipped == rows


def test_shipped_splits_are_package_data_and_tasks_build_writes_beside_the_user_not_into_the_package(
    cli, tmp_path, monkeypatch
):
    import sgpo

    assert DATA_DIR.parent == Path(sgpo.__file__).parent / "tasks"  # inside the package: it ships in the wheel
    before = {p.name: p.read_bytes() for p in DATA_DIR.glob("*.jsonl")}
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("tasks", "build")
    assert code == 0, out
    for split in ("train", "eval"):
        assert (tmp_path / "tasks" / f"{split}.jsonl").read_bytes() == before[f"{split}.jsonl"]
    assert {p.name: p.read_bytes() for p in DATA_DIR.glob("*.jsonl")} == before


def test_train_and_eval_are_disjoint_and_large_enough():
    train, held_out = load_dataset("builtin:train").frame, load_dataset("builtin:eval").frame
    assert len(train) >= 3000 and len(held_out) >= 600
    assert not set(train["prompt"]) & set(held_out["prompt"])
    assert set(train["task"]) == set(FAMILIES) and len(FAMILIES) >= 3
    assert train["id"].is_unique


def test_every_family_covers_its_difficulty_levels():
    train = load_dataset("builtin:train").frame
    for name, fam in FAMILIES.items():
        assert set(train[train.task == name]["difficulty"]) == set(fam.levels)
