import hashlib
import json
import os
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sgpo import data, data_read
from sgpo.data import DEFAULT_TASK, check_spec, load_dataset
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
    pd.DataFrame({"key": ["a", "b"], "q": ["1+1=", "2+2="], "gold": ["2", "4"], "level": ["Level 3", "1"]}).to_csv(
        path, index=False
    )
    ds = load_dataset(str(path), prompt_field="q", answer_field="gold", id_field="key")
    assert ds.frame.to_dict("records") == [
        {"id": "a", "prompt": "1+1=", "answer": "2", "task": "default", "difficulty": 3},
        {"id": "b", "prompt": "2+2=", "answer": "4", "task": "default", "difficulty": 1},
    ]


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
    path = write(
        tmp_path / "dup.jsonl",
        '{"id": 1, "prompt": "a", "answer": "b"}\n'
        '{"id": 2, "prompt": "c", "answer": "d"}\n'
        '{"id": 1, "prompt": "e", "answer": "f"}\n',
    )
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
    proc = subprocess.run(
        [sys.executable, "-m", "sgpo", "data", "inspect", str(path)], capture_output=True, text=True, env=env, cwd=ROOT
    )
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


# Hostile and unusual input (issue 14): every file is read or refused with one line naming file, line and field.


def test_the_hash_covers_content_only_so_a_renamed_file_keeps_its_hash_and_ids(tmp_path):
    text = '{"question": "1+1=", "answer": 2}\n{"question": "2+2=", "answer": 4}\n'
    first = load_dataset(str(write(tmp_path / "gsm8k-train.jsonl", text)))
    second = load_dataset(str(write(tmp_path / "copy of it.jsonl", text)))
    assert first.hash == second.hash
    assert first.frame["id"].tolist() == second.frame["id"].tolist() == ["q-000000", "q-000001"]
    assert set(first.frame["task"]) == {DEFAULT_TASK}


def test_the_hash_is_the_sha256_of_the_whole_frame_however_it_is_sliced(monkeypatch):
    whole = load_dataset("builtin:train")
    expected = hashlib.sha256(whole.frame.to_json(orient="values").encode()).hexdigest()[:16]
    monkeypatch.setattr(data, "HASH_SLICE_ROWS", 7)
    monkeypatch.setattr(data, "HASH_SLICE_CHARS", 1000)
    assert whole.hash == expected == load_dataset("builtin:train").hash


def test_gsm8k_resaved_by_pandas_with_line_separators_in_a_string_loads(tmp_path):
    frame = pd.read_json(require_gsm8k(), lines=True)
    odd = "Tom has 2\u2028apples and 3\u2029pears\u0085and a plum. How many fruits?"
    frame = pd.concat([frame, pd.DataFrame([{"question": odd, "answer": "2 + 3 + 1 = 6\n#### 6"}])])
    path = tmp_path / "gsm8k.jsonl"
    frame.to_json(path, orient="records", lines=True, force_ascii=False)
    assert "\u2028".encode() in path.read_bytes()
    ds = load_dataset(str(path))
    assert len(ds) == 1320 and ds.frame["prompt"].iloc[-1] == odd and ds.frame["answer"].iloc[-1] == "6"
    assert ds.frame["answer"].iloc[:1319].tolist() == load_dataset(str(require_gsm8k())).frame["answer"].tolist()


@pytest.mark.parametrize(
    "name, text",
    [
        ("q.jsonl", '{"prompt": "1+1=", "answer": "2"}\r\n{"prompt": "x", "answer": "y"}\r\n'),
        ("q.csv", "prompt,answer\r\n1+1=,2\r\nx,y\r\n"),
    ],
)
def test_a_byte_order_mark_and_crlf_line_ends_are_accepted_in_every_text_format(tmp_path, name, text):
    plain = load_dataset(str(write(tmp_path / name, text.replace("\r\n", "\n"))))
    (tmp_path / "bom").mkdir()
    marked = tmp_path / "bom" / name
    marked.write_bytes(b"\xef\xbb\xbf" + text.encode())
    ds = load_dataset(str(marked))
    assert ds.fields == ["prompt", "answer"] and ds.hash == plain.hash and len(ds) == 2


def test_numbers_are_kept_as_written(tmp_path):
    lines = [
        '{"id": 1, "prompt": "a", "answer": 2}',
        '{"id": 2, "prompt": "b", "answer": 2.5}',
        '{"id": 3, "prompt": "c", "answer": 2.50}',
        '{"id": 4, "prompt": "d", "answer": 1e3}',
        '{"id": 5.0, "prompt": "e", "answer": -7}',
    ]
    ds = load_dataset(str(write(tmp_path / "n.jsonl", "\n".join(lines))))
    assert ds.frame["answer"].tolist() == ["2", "2.5", "2.50", "1e3", "-7"]
    assert ds.frame["id"].tolist() == ["1", "2", "3", "4", "5.0"]
    table = pa.table(
        {
            "question": ["a", "b", "c"],
            "whole": [2.0, 3.0, 2.5],
            "count": [2, 3, 4],
            "single": pa.array([0.1, 2.0, 7.0], pa.float32()),
        }
    )
    pq.write_table(table, tmp_path / "n.parquet")
    for field, expected in (("whole", ["2", "3", "2.5"]), ("count", ["2", "3", "4"]), ("single", ["0.1", "2", "7"])):
        ds = load_dataset(str(tmp_path / "n.parquet"), answer_field=field)
        assert ds.frame["answer"].tolist() == expected and ds.reward == "math", field


def test_the_hub_goes_through_the_same_checks(monkeypatch):
    import datasets

    hub = datasets.Dataset.from_list([{"problem": "1+1=", "answer": 2.0}, {"problem": "x", "answer": None}])
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, config, split: hub)
    with pytest.raises(DataError, match=r"^org/set::train row 2: answer field 'answer' is empty \(null, NaN"):
        load_dataset("hf:org/set")
    monkeypatch.setattr(datasets, "load_dataset", lambda repo, config, split: hub.select([0]))
    assert load_dataset("hf:org/set").frame["answer"].tolist() == ["2"]


def parquet(**columns):
    return lambda path: pq.write_table(pa.table(columns), path)


BIG = "x" * 5_000_000
HOSTILE = {  # name: (file, content: text, bytes or a writer, what the one-line error says)
    "5 MB prompt, JSONL": (
        "big.jsonl",
        '{"prompt": "a", "answer": "b"}\n{"prompt": "' + BIG + '", "answer": "b"}\n',
        r"big\.jsonl:2: line is over 1,048,576 bytes, the limit for one row; keep only",
    ),
    "5 MB prompt, CSV": ("big.csv", f"prompt,answer\n{BIG},b\n", r"big\.csv:2: line is over 1,048,576 bytes"),
    "unclosed quote, CSV": (
        "open.csv",
        'prompt,answer\n"' + "x\n" * 600_000 + ",b\n",
        r"open\.csv:65538: a CSV field is over 131,072 characters; check for an unclosed quote",
    ),
    "1.2 MB record in lines, CSV": (
        "wide.csv",
        "a,b,c,d,e,f,g,h,i,j,prompt,answer\n" + ",".join(['"' + "x\n" * 60_000 + '"'] * 10) + ",p,b\n",
        r"wide\.csv:\d+: CSV record is over 1,048,576 bytes",
    ),
    "5 MB prompt, Parquet": (
        "big.parquet",
        parquet(prompt=[BIG], answer=["b"]),
        r"big\.parquet row 1: field 'prompt' is 5,000,000 bytes, over the 65,536-byte limit",
    ),
    "repeated 70 kB prompt, Parquet": (
        "rep.parquet",
        parquet(prompt=["y" * 70_000] * 300, answer=["1"] * 300),
        r"rep\.parquet row 1: field 'prompt' is 70,000 bytes",
    ),
    "200 kB prompt, JSONL": (
        "long.jsonl",
        '{"prompt": "%s", "answer": "b"}\n' % ("é" * 100_000),
        r"long\.jsonl:1: field 'prompt' is 200,000 bytes, over the 65,536-byte limit",
    ),
    "deep nesting": (
        "deep.jsonl",
        '{"prompt": "a", "answer": "b", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        r"deep\.jsonl:1: JSON nested too deeply to read",
    ),
    "NaN answer": (
        "nan.jsonl",
        '{"prompt": "a", "answer": "1"}\n{"prompt": "b", "answer": NaN}\n',
        r"nan\.jsonl:2: answer field 'answer' is empty \(null, NaN or blank\); every row needs an answer",
    ),
    "Infinity id": (
        "inf.jsonl",
        '{"id": Infinity, "prompt": "b", "answer": "1"}\n',
        r"inf\.jsonl:1: id field 'id' is empty",
    ),
    "null id": (
        "nid.jsonl",
        '{"id": "a", "prompt": "a", "answer": "1"}\n{"id": null, "prompt": "b", "answer": "1"}\n',
        r"nid\.jsonl:2: id field 'id' is empty",
    ),
    "null answer, Parquet": (
        "null.parquet",
        parquet(question=["a", "b"], answer=["1", None]),
        r"null\.parquet row 2: answer field 'answer' is empty \(null, NaN",
    ),
    "NaN answer, Parquet": (
        "nan.parquet",
        parquet(question=["a", "b"], answer=[1.0, float("nan")]),
        r"nan\.parquet row 2: answer field 'answer' is empty \(null, NaN",
    ),
    "duplicate id, Parquet": (
        "dup.parquet",
        parquet(id=[1, 2, 1], question=["a", "b", "c"], answer=["1"] * 3),
        r"dup\.parquet row 3: duplicate id '1' \(first seen on row 1\)",
    ),
    "chat prompt": (
        "chat.jsonl",
        '{"prompt": [{"role": "user", "content": "hi"}], "answer": "1"}\n',
        r"chat\.jsonl:1: field 'prompt' holds chat messages .* give a plain-text prompt field",
    ),
    "chat prompt, Parquet": (
        "chat.parquet",
        parquet(prompt=[[{"role": "user", "content": "hi"}]], answer=["1"]),
        r"chat\.parquet row 1: field 'prompt' holds chat messages",
    ),
    "list answer": (
        "list.jsonl",
        '{"prompt": "a", "answer": [1, 2]}\n',
        r"list\.jsonl:1: field 'answer' holds a list; it must be text or a number",
    ),
    "binary answer, Parquet": (
        "bin.parquet",
        parquet(prompt=["a"], answer=[b"\x00\x01"]),
        r"bin\.parquet row 1: field 'answer' holds binary data",
    ),
    "unpaired surrogate": (
        "sur.jsonl",
        '{"prompt": "\\ud800", "answer": "1"}\n',
        r"sur\.jsonl:1: field 'prompt' holds an unpaired surrogate",
    ),
    "GSM8K answer with nothing after ####": (
        "g.jsonl",
        '{"question": "a", "answer": "so 3\\n#### "}\n',
        r"g\.jsonl:1: answer field 'answer' has nothing after '####'",
    ),
    "JSON array file": (
        "array.json",
        '[{"prompt": "a", "answer": "1"}]\n',
        r"array\.json:1: expected a JSON object, got list; each line must be one object",
    ),
    "empty CSV answer": ("e.csv", "prompt,answer\n1+1=,2\n2+2=, \n", r"e\.csv:3: answer field 'answer' is empty"),
    "CSV row with too many fields": (
        "extra.csv",
        "prompt,answer\n1,2\n3,4,5\n",
        r"extra\.csv:3: 3 fields where the header has 2; quote any field",
    ),
    "CSV header with a repeated name": (
        "twice.csv",
        "prompt,answer,prompt\n1,2,3\n",
        r"twice\.csv:1: column 'prompt' appears twice in the header",
    ),
    "CSV in Latin-1": ("latin.csv", b"prompt,answer\ncaf\xe9,2\n", r"latin\.csv:2: not UTF-8"),
    "Parquet text in Latin-1": (
        "latin.parquet",
        parquet(prompt=pa.array([b"ok", b"caf\xe9"], pa.binary()).view(pa.string()), answer=["1", "2"]),
        r"latin\.parquet row 2: field 'prompt' is not UTF-8",
    ),
    "not Parquet": ("junk.parquet", b"PAR1 this is not parquet", r"junk\.parquet could not be read as Parquet"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_are_refused_with_one_line_naming_file_line_and_field(tmp_path, case):
    name, content, message = HOSTILE[case]
    path = tmp_path / name
    if callable(content):
        content(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        write(path, content)
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(str(path))
    assert "\n" not in str(caught.value)


# The loaders' limits, each set where it lives (sgpo.data_read) and exercised through every loader: JSONL, CSV,
# Parquet and the hub (`datasets` reading a local folder: the same code path as a download, no network).
ROWS = [{"prompt": f"{i}+1=", "answer": str(i + 1)} for i in range(3)]


def jsonl_file(folder, rows):
    return write(folder / "q.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def csv_file(folder, rows):
    path = folder / "q.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def parquet_file(folder, rows):
    path = folder / "q.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def hub_folder(tmp_path, monkeypatch):
    """`hf:hubdata` resolves to a local folder read by `datasets` itself, cached under tmp_path."""
    import datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))

    def make(rows):
        (tmp_path / "hubdata").mkdir(exist_ok=True)
        jsonl_file(tmp_path / "hubdata", rows).rename(tmp_path / "hubdata" / "train.jsonl")
        return "hf:hubdata"

    return make


LOADERS = {"jsonl": jsonl_file, "csv": csv_file, "parquet": parquet_file}
ROW_LIMIT_ERRORS = {
    "jsonl": r"q\.jsonl:3: the dataset has over 2 rows, the limit",  # counted while reading
    "csv": r"q\.csv:4: the dataset has over 2 rows, the limit",
    "parquet": r"dataset file .*q\.parquet holds 3 rows, over the 2-row limit",  # from the file's metadata
    "hub": r"hubdata::train holds 3 rows, over the 2-row limit; pick a smaller split",  # from len(dataset)
}


def spec_for(loader, tmp_path, hub_folder, rows):
    return hub_folder(rows) if loader == "hub" else str(LOADERS[loader](tmp_path, rows))


@pytest.mark.parametrize("loader", list(ROW_LIMIT_ERRORS))
def test_every_loader_holds_the_row_limit_set_in_data_read(loader, tmp_path, hub_folder, monkeypatch):
    spec = spec_for(loader, tmp_path, hub_folder, ROWS)
    monkeypatch.setattr(data_read, "MAX_ROWS", 3)
    assert len(load_dataset(spec)) == 3  # at the limit: read
    monkeypatch.setattr(data_read, "MAX_ROWS", 2)
    with pytest.raises(DataError, match=ROW_LIMIT_ERRORS[loader]):
        load_dataset(spec)


@pytest.mark.parametrize("loader", ["jsonl", "csv", "parquet"])
def test_a_file_over_the_data_limit_is_refused_by_its_size_before_it_is_read(loader, tmp_path, monkeypatch):
    path = LOADERS[loader](tmp_path, ROWS)
    size = path.stat().st_size
    monkeypatch.setattr(data_read, "MAX_DATA_BYTES", size)
    assert check_spec(str(path)) == str(path.resolve())  # at the limit
    monkeypatch.setattr(data_read, "MAX_DATA_BYTES", size - 1)
    with pytest.raises(DataError, match=rf"q\.{loader} is {size:,} bytes, over the {size - 1:,}-byte limit"):
        check_spec(str(path))
    with pytest.raises(DataError, match="-byte limit"):
        load_dataset(str(path))


def test_a_parquet_file_over_the_data_limit_uncompressed_is_refused_from_its_metadata(tmp_path, monkeypatch):
    rows = [{"prompt": f"{i:06d}" + "r abcdefgh=" * 20, "answer": "x"} for i in range(2000)]  # compresses well
    path = tmp_path / "q.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, use_dictionary=False, compression="zstd")
    uncompressed = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    assert uncompressed > 2 * path.stat().st_size
    monkeypatch.setattr(data_read, "MAX_DATA_BYTES", path.stat().st_size * 2)  # the file itself fits
    with pytest.raises(DataError, match=rf"q\.parquet is {uncompressed:,} bytes uncompressed, over the"):
        load_dataset(str(path))


def test_kept_text_over_the_data_limit_is_refused_at_the_row_that_crosses_it(tmp_path, hub_folder, monkeypatch):
    spec = hub_folder([{"prompt": "p" * 40, "answer": "a" * 40}] * 2)  # no file to size up
    monkeypatch.setattr(data_read, "MAX_DATA_BYTES", 100)
    with pytest.raises(DataError, match=r"hubdata::train row 2: the dataset holds over 100 bytes of text, the limit"):
        load_dataset(spec)


@pytest.mark.parametrize("loader", ["jsonl", "csv", "parquet", "hub"])
def test_every_loader_holds_the_field_limit_set_in_data_read(loader, tmp_path, hub_folder, monkeypatch):
    spec = spec_for(loader, tmp_path, hub_folder, [{"prompt": "r abcdefgh=", "answer": "hgfedcba"}])
    monkeypatch.setattr(data_read, "MAX_FIELD_BYTES", 11)
    assert load_dataset(spec).frame["prompt"].tolist() == ["r abcdefgh="]  # 11 bytes: at the limit
    monkeypatch.setattr(data_read, "MAX_FIELD_BYTES", 10)
    with pytest.raises(DataError, match=r"field 'prompt' is 11 bytes, over the 10-byte limit for one field"):
        load_dataset(spec)


@pytest.mark.parametrize("loader", ["jsonl", "csv"])
def test_text_loaders_hold_the_row_bytes_limit_set_in_data_read(loader, tmp_path, monkeypatch):
    path = LOADERS[loader](tmp_path, [{"prompt": "p" * 30, "answer": "1"}])
    monkeypatch.setattr(data_read, "MAX_ROW_BYTES", 60)
    assert len(load_dataset(str(path))) == 1
    monkeypatch.setattr(data_read, "MAX_ROW_BYTES", 30)
    with pytest.raises(DataError, match=rf"q\.{loader}:\d: .* over 30 bytes, the limit for one row"):
        load_dataset(str(path))


def test_check_spec_readies_a_spec_for_another_process_without_reading_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "q.jsonl", "not even json\n")
    assert check_spec(" q.jsonl ") == str(tmp_path / "q.jsonl")
    assert check_spec("builtin:rev-eval") == "builtin:rev-eval"
    assert check_spec("hf:openai/gsm8k:main:test") == "hf:openai/gsm8k:main:test"
    (tmp_path / "folder").mkdir()
    write(tmp_path / "notes.txt", "x")
    for spec, message in [
        ("", "dataset spec is empty"),
        ("builtin:nope", "unknown built-in dataset 'nope'"),
        ("hf:a b", "a hub dataset is written hf:REPO"),
        ("missing.jsonl", "does not exist"),
        ("folder", "is not a file"),
        ("notes.txt", "unknown format '.txt'"),
    ]:
        with pytest.raises(DataError, match=message):
            check_spec(spec)
