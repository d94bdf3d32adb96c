import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from sgpo.data import load_dataset
from sgpo.errors import DataError, StoreError
from sgpo.store import Store
from tests.conftest import ROOT, require_gsm8k


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_gsm8k_format_is_recognised_and_the_gold_number_extracted():
    ds = load_dataset(str(require_gsm8k()))
    first = ds.frame.iloc[0]
    assert first["answer"] == "18" and "ducks" in first["prompt"]
    assert ds.reward == "math" and ds.fields == ["question", "answer"]


def test_csv_with_mapped_fields_and_ids(tmp_path):
    path = tmp_path / "q.csv"
    pd.DataFrame({"key": ["a", "b"], "q": ["1+1=", "2+2="], "gold": ["2", "4"], "level": ["Level 3", "1"]}) \
        .to_csv(path, index=False)
    ds = load_dataset(str(path), prompt_field="q", answer_field="gold", id_field="key")
    assert ds.frame.to_dict("records") == [
        {"id": "a", "prompt": "1+1=", "answer": "2", "task": "q", "difficulty": 3},
        {"id": "b", "prompt": "2+2=", "answer": "4", "task": "q", "difficulty": 1}]


def test_parquet_and_jsonl_of_the_same_rows_hash_alike(tmp_path):
    rows = [{"id": "x1", "question": "r ab=", "answer": "ba"}, {"id": "x2", "question": "r abc=", "answer": "cba"}]
    pd.DataFrame(rows).to_parquet(tmp_path / "data.parquet")
    write(tmp_path / "data.jsonl", "\n".join(json.dumps(r) for r in rows))
    assert load_dataset(str(tmp_path / "data.parquet")).hash == load_dataset(str(tmp_path / "data.jsonl")).hash
    changed = rows[:1] + [{**rows[1], "answer": "abc"}]
    write(tmp_path / "other.jsonl", "\n".join(json.dumps(r) for r in changed))
    assert load_dataset(str(tmp_path / "other.jsonl")).hash != load_dataset(str(tmp_path / "data.jsonl")).hash


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"prompt": "a", "answer": "b"}\n{"prompt": "c", "answer": \n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        load_dataset(str(path))


def test_missing_field_names_the_field_and_line(tmp_path):
    path = write(tmp_path / "q.jsonl", '{"prompt": "a", "answer": "b"}\n{"prompt": "c"}\n')
    with pytest.raises(DataError, match=r"q\.jsonl:2: missing answer field 'answer'"):
        load_dataset(str(path))
    with pytest.raises(DataError, match=r"no prompt field found.*--prompt-field"):
        load_dataset(str(write(tmp_path / "r.jsonl", '{"text": "a", "answer": "b"}\n')))


def test_empty_file_is_refused(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_dataset(str(write(tmp_path / "empty.jsonl", "\n\n")))
    with pytest.raises(DataError, match="empty"):
        load_dataset(str(write(tmp_path / "empty.csv", "")))


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"prompt": "a", "answer": "b"}\n{"prompt": "caf\xe9", "answer": "b"}\n')
    with pytest.raises(DataError, match=r"latin\.jsonl:2: not UTF-8"):
        load_dataset(str(path))


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write(tmp_path / "dup.jsonl", '{"id": 1, "prompt": "a", "answer": "b"}\n'
                                         '{"id": 2, "prompt": "c", "answer": "d"}\n'
                                         '{"id": 1, "prompt": "e", "answer": "f"}\n')
    with pytest.raises(DataError, match=r"dup\.jsonl:3: duplicate id '1' \(first seen on line 1\)"):
        load_dataset(str(path))


def test_missing_file_and_unknown_builtin(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="unknown built-in dataset 'nope'.*builtin:train"):
        load_dataset("builtin:nope")


def test_hub_dataset_offline_fails_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="could not load hf:nobody/nothing.*offline"):
        load_dataset("hf:nobody/nothing")


def test_unreadable_database_path_is_a_store_error(tmp_path):
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    with pytest.raises(StoreError, match="cannot open the database .*a-folder.db"):
        Store(folder)
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.db", readonly=True)


def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path):
    path = write(tmp_path / "bad.jsonl", "not json\n")
    env = {**os.environ, "SGPO_DB": str(tmp_path / "sgpo.db")}
    proc = subprocess.run([sys.executable, "-m", "sgpo", "data", "inspect", str(path)], capture_output=True,
                          text=True, env=env, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "bad.jsonl:1" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_path.iterdir()) == [path]


def test_data_inspect_json_on_builtin_gsm8k_and_csv(cli, tmp_path):
    code, out, _ = cli("data", "inspect", "builtin:train", "--json")
    info = json.loads(out)
    assert code == 0 and info["rows"] == 4000 and set(info["difficulty"]) == {"add", "rev", "count", "sort"}
    assert sum(sum(levels.values()) for levels in info["difficulty"].values()) == 4000
    assert {"id", "prompt", "answer", "task", "difficulty"} <= set(info["fields"]) and len(info["hash"]) == 16
    code, out, _ = cli("data", "inspect", require_gsm8k(), "--json")
    assert code == 0 and json.loads(out)["rows"] == 1319
    csv = tmp_path / "q.csv"
    csv.write_text("question,answer\n1+1=,2\n")
    code, out, _ = cli("data", "inspect", csv, "--json")
    assert code == 0 and json.loads(out)["rows"] == 1 and out.count("\n") == 1


def test_tasks_lists_builtin_spec_first_on_each_line(cli):
    code, out, _ = cli("tasks")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) >= 3
    assert all(line.startswith("builtin:") for line in lines)
    assert lines[0].split()[0] == "builtin:train" and "4000" in lines[0]


def test_a_bad_option_value_is_a_usage_error_not_a_traceback(cli):
    code, out, err = cli("data", "inspect", "builtin:train", "--prompt-field")
    assert code == 2 and "Traceback" not in err and out == ""
    code, _, err = cli("no-such-command")
    assert code == 2 and "No such command" in err
