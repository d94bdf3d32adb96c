"""Loading any dataset through one spec, used by every command and page.

    builtin:train                 the shipped task suite (`sgpo tasks` lists the names)
    path/to/file.jsonl|csv|parquet with --prompt-field / --answer-field / --id-field / --task-field /
                                  --difficulty-field, or auto-detected
    hf:REPO[:CONFIG][:SPLIT]      through the `datasets` library

    ds = load_dataset(DatasetSpec("mine.jsonl", prompt_field="Question Text", reward="math"))
    store.record_dataset(**ds.record())                # the mapping and reward, kept with the dataset
    ds = load_dataset(recall(store, "mine.jsonl"))     # later: loaded the same way, no option repeated
    ds = profiled_dataset(store, profile_row)          # exactly the rows and reward a profile measured

Every dataset becomes the same frame: id, prompt, answer, task, difficulty. GSM8K's format (the gold
answer after '####') is recognised. A spec string or a DatasetSpec (sgpo/data_spec.py: spec, field
mapping, reward) names what to load; `Dataset.mapping` is what the load used, every field explicit, and
`Dataset.reward_reason` says why its reward was chosen (named, or picked: sgpo.tasks.rewards.pick_reward). Values are kept as written (an answer 2 is "2"); an empty, null or NaN
prompt, answer or id is refused, and so is a chat-format prompt (a list of messages), since no chat template
is applied here. Rows without an id are numbered q-000000, q-000001, ... and rows without a task get
DEFAULT_TASK, never the file's name: the content hash is taken over the frame alone, so a profile matches the
data it was made from whatever the file is called. Reading, and the limits on what is read (MAX_ROW_BYTES,
MAX_FIELD_BYTES, MAX_ROWS, MAX_DATA_BYTES), live in sgpo/data_read.py.
The hash covers the frame and, when it is not the one the answers would pick, the reward: the same rows
graded another way are another dataset to a profile.
"""

from __future__ import annotations

import hashlib
import math
import re
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sgpo import data_read  # its limits are read as data_read.MAX_*, so a test that sets one sets it everywhere
from sgpo.data_read import (
    Rows,
    read_csv,
    read_hub,
    read_jsonl,
    read_parquet,
    too_long,
)
from sgpo.data_spec import DatasetSpec
from sgpo.errors import DataError
from sgpo.tasks import builtin
from sgpo.tasks.rewards import Reward, pick_reward, resolve_reward

__all__ = [
    "COLUMNS",
    "Dataset",
    "DatasetSpec",
    "SUFFIXES",
    "check_spec",
    "inspect",
    "load_dataset",
    "profiled_dataset",
    "query_columns",
    "reward_probe",
    "recall",
    "recorded_dataset",
    "reward_columns",
]

PROMPT_FIELDS = ("prompt", "question", "problem", "query", "input", "instruction")
ANSWER_FIELDS = ("answer", "solution", "target", "output", "label", "final_answer")
ID_FIELDS = ("id", "idx", "uid", "query_id", "unique_id")
DIFFICULTY_FIELDS = ("difficulty", "level")
COLUMNS = ["id", "prompt", "answer", "task", "difficulty"]
SUFFIXES = (".jsonl", ".json", ".ndjson", ".csv", ".parquet", ".pq")
DEFAULT_TASK = "default"
GSM8K_MARK = "####"
CHUNK_BYTES = 4 << 20  # Python strings held before they move into Arrow
HASH_SLICE_CHARS, HASH_SLICE_ROWS = 4 << 20, 16384  # the frame is serialised for its hash in slices, never whole
TEXT = pd.Series([""]).dtype  # the dtype pandas gives text columns


@dataclass
class Dataset:
    spec: str
    frame: pd.DataFrame  # COLUMNS, one row per query, in file order
    hash: str  # sha256 of the normalised rows (and of a reward other than the picked one), first 16 hex digits
    reward: str  # exact | math | math-lenient | MODULE:FUNCTION (sgpo.tasks.rewards.resolve_reward)
    source: str  # file path or hub id
    fields: list[str] = field(default_factory=list)  # the source's own field names
    mapping: DatasetSpec | None = None  # what this load used: checked spec, every field, the reward
    reward_reason: str = ""  # why this reward: named, or picked from the answers (and why)

    def __len__(self) -> int:
        return len(self.frame)

    def resolved_reward(self) -> Reward:
        return resolve_reward(self.reward)

    def scorer(self):
        """The per-completion form of the reward: score(completion, answer, **columns) -> float."""
        return self.resolved_reward().score

    def record(self) -> dict:
        """Keyword arguments for Store.record_dataset: the dataset with its mapping and reward."""
        mapping = (self.mapping or DatasetSpec(self.spec, reward=self.reward)).to_dict()
        return {
            "hash": self.hash,
            "spec": self.spec,
            "path": self.source,
            "rows": len(self),
            "fields": self.fields,
            "mapping": mapping,
        }

    def difficulty_counts(self) -> dict[str, dict[str, int]]:
        counts = self.frame.groupby(["task", "difficulty"]).size()
        out: dict[str, dict[str, int]] = {}
        for (task, level), n in counts.items():
            out.setdefault(str(task), {})[str(level)] = int(n)
        return out

    def reward_fn(self):
        """The reward in TRL's form: f(completions, answer, **columns) -> list[float]."""
        return self.resolved_reward().trl


def check_spec(spec: str) -> str:
    """A dataset spec made ready for another process, without reading the data: `builtin:NAME` checked against
    the built-in names; a file path checked (exists, is a file, known suffix, at most MAX_DATA_BYTES) and made
    absolute; `hf:REPO[:CONFIG][:SPLIT]` checked for syntax. DataError otherwise."""
    spec = spec.strip()
    if not spec:
        raise DataError(
            "dataset spec is empty: give builtin:NAME, a .jsonl/.csv/.parquet file or hf:REPO[:CONFIG][:SPLIT]"
        )
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in builtin.builtin_names():
            raise DataError(
                f"unknown built-in dataset {name!r}: choose one of "
                f"{', '.join('builtin:' + n for n in builtin.builtin_names())}"
            )
        return spec
    if spec.startswith("hf:"):
        if not re.fullmatch(r"hf:[\w.-]+(/[\w.-]+)?(:[\w.-]*)?(:[\w.-]+)?", spec):
            raise DataError(f"dataset {spec!r}: a hub dataset is written hf:REPO[:CONFIG][:SPLIT]")
        return spec
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"dataset file {path} does not exist: check the path (relative paths start at "
            f"{Path.cwd()}); a spec is builtin:NAME, a file, or hf:REPO[:CONFIG][:SPLIT]"
        )
    if not path.is_file():
        raise DataError(f"dataset path {path} is not a file: give a .jsonl, .csv or .parquet file")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(
            f"dataset file {path}: unknown format {path.suffix or '(no suffix)'!r}; use one of {', '.join(SUFFIXES)}"
        )
    size = path.stat().st_size
    if size > data_read.MAX_DATA_BYTES:
        raise DataError(
            f"dataset file {path} is {size:,} bytes, over the {data_read.MAX_DATA_BYTES:,}-byte limit; "
            f"keep only the fields sgpo needs (prompt, answer, id) or take a subset"
        )
    return str(path.resolve())


def load_dataset(
    spec: str | DatasetSpec,
    *,
    prompt_field: str | None = None,
    answer_field: str | None = None,
    id_field: str | None = None,
    task_field: str | None = None,
    difficulty_field: str | None = None,
    reward: str | None = None,
) -> Dataset:
    """Read, validate and normalise a dataset; DataError naming file, line and field on bad input.

    `spec` is a spec string or a DatasetSpec; options given here win over the DatasetSpec's. A mapped field
    the source lacks is refused naming the field, the file and its fields. `reward` (exact, math,
    math-lenient or MODULE:FUNCTION) is checked before the data is read and a custom one probed on the
    first row after (RewardError naming --reward)."""
    wanted = DatasetSpec.of(
        spec,
        prompt_field=prompt_field,
        answer_field=answer_field,
        id_field=id_field,
        task_field=task_field,
        difficulty_field=difficulty_field,
        reward=reward,
    )
    if wanted.reward is not None:
        resolve_reward(wanted.reward)  # an unknown name or an unimportable function, before any reading
    checked = check_spec(wanted.spec)
    try:
        if checked.startswith("builtin:"):
            path, family = builtin.builtin_file(checked.split(":", 1)[1])
            rows = read_jsonl(path)
            if family:
                read = rows.read
                rows = replace(rows, read=lambda names: ((n, r) for n, r in read(names) if r.get("task") == family))
            fixed = dict(prompt_field="prompt", answer_field="answer", id_field="id", task_field="task")
            return _normalise(wanted.spec, rows, replace(wanted, spec=checked, difficulty_field="difficulty", **fixed))
        rows = read_hub(checked) if checked.startswith("hf:") else _read_file(Path(checked))
        if not rows.fields:
            raise DataError(f"dataset {rows.source} is empty: it holds no rows")
        for role in ("prompt", "answer", "id"):
            _check_mapped(rows, wanted.field(role), role)
        mapping = replace(
            wanted,
            spec=checked,
            prompt_field=wanted.prompt_field or _detect(rows, PROMPT_FIELDS, "prompt"),
            answer_field=wanted.answer_field or _detect(rows, ANSWER_FIELDS, "answer"),
            id_field=wanted.id_field or next((f for f in ID_FIELDS if f in rows.fields), None),
            task_field=wanted.task_field or ("task" if "task" in rows.fields else None),
            difficulty_field=wanted.difficulty_field or next((f for f in DIFFICULTY_FIELDS if f in rows.fields), None),
        )
        return _normalise(wanted.spec, rows, mapping)
    except OSError as exc:
        raise DataError(
            f"dataset {checked} could not be read ({exc.strerror or exc}); check that it is a readable file"
        ) from None
    except RecursionError:
        raise DataError(
            f"dataset {checked} is nested too deeply to read; a row is one record of text and number fields"
        ) from None


def recall(store, spec: str | DatasetSpec, **given) -> DatasetSpec:
    """What to load `spec` with: the options `given` now (None ones left out), over the mapping and reward
    recorded in `store` when this dataset was last loaded with one (found by its checked spec, so a relative
    path finds the absolute one recorded). `store` may be None: then only what is given. Reads only."""
    wanted = DatasetSpec.of(spec, **given)
    if store is None:
        return wanted
    return wanted.over(store.dataset_mapping(spec=check_spec(wanted.spec)))


def profiled_dataset(store, profile_row: dict, *, spec: str | DatasetSpec | None = None, **given) -> Dataset:
    """The dataset a profile measured (a `profiles` row), loaded with the mapping and reward recorded under
    its dataset hash. `spec` overrides where the rows are read from (a moved file) and `given` adds options
    (reward=...); the recorded mapping fills the rest (`store` None: nothing recorded). DataError when the rows
    read now are not the ones profiled."""
    return recorded_dataset(
        store,
        profile_row["dataset_hash"],
        spec=spec,
        fallback=profile_row["dataset_spec"],
        owner=f"profile {profile_row['name']!r} measured",
        remedy="restore the file, or profile it again",
        **given,
    )


def recorded_dataset(
    store,
    hash: str,
    *,
    spec: str | DatasetSpec | None = None,
    fallback: str,
    owner: str,
    remedy: str,
    **given,
) -> Dataset:
    """The dataset whose content hash is `hash`, loaded with the mapping and reward the store recorded under it
    (read from `spec` if given, else from where it was recorded, else from `fallback`), the options in `given`
    over them. DataError naming `owner` ("profile 'x' measured", "run 'y' trained on") and `remedy` when the
    rows or the reward read now give another hash."""
    recorded = store.dataset_mapping(hash=hash) if store is not None else None
    wanted = DatasetSpec.of(spec or (recorded or {}).get("spec") or fallback, **given)
    dataset = load_dataset(wanted.over(recorded))
    if dataset.hash != hash:
        raise DataError(
            f"dataset {dataset.source} now gives other rows or another reward (hash {dataset.hash}) than {owner} "
            f"(hash {hash}): {remedy}"
        )
    return dataset


def inspect(spec: str | DatasetSpec, store=None, **given) -> dict:
    """What `sgpo data inspect` and the Data page show of a dataset, loaded as a later command would load it
    (recall: the options `given`, over what `store` recorded): rows, fields, hash, the mapping every field of
    which is explicit, the reward and why, difficulty counts and the first row."""
    ds = load_dataset(recall(store, spec, **given))
    return {
        "spec": ds.spec,
        "source": ds.source,
        "rows": len(ds),
        "fields": ds.fields,
        "hash": ds.hash,
        "reward": ds.reward,
        "reward_reason": ds.reward_reason,
        "mapping": ds.mapping.to_dict() if ds.mapping else {},
        "difficulty": ds.difficulty_counts(),
        "example": ds.frame.iloc[0].to_dict(),
    }


def reward_columns(frame: pd.DataFrame) -> dict[str, list]:
    """The columns a reward is called with for these rows, under TRL's names: prompts, answer, id, task,
    difficulty. Our engine passes them as TRL does, so a user's function sees the same arguments."""
    return {
        "prompts": frame["prompt"].tolist(),
        "answer": frame["answer"].tolist(),
        "id": frame["id"].tolist(),
        "task": frame["task"].tolist(),
        "difficulty": frame["difficulty"].tolist(),
    }


def query_columns(frame: pd.DataFrame) -> list[dict]:
    """Each row's own columns as one completion's reward is called with them (Reward.score): prompts, id,
    task, difficulty, under TRL's names, so a user's function sees what TRL would pass it."""
    return [
        {"prompts": p, "id": i, "task": t, "difficulty": int(d)}
        for p, i, t, d in zip(frame["prompt"], frame["id"], frame["task"], frame["difficulty"])
    ]


def _read_file(path: Path) -> Rows:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv(path)
    if suffix in (".parquet", ".pq"):
        return read_parquet(path)
    return read_jsonl(path)


def _check_mapped(rows: Rows, name: str | None, role: str) -> None:
    if name is not None and name not in rows.fields:
        raise DataError(
            f"dataset {rows.source}: no field {name!r} to use as the {role} (--{role}-field); its fields are "
            f"{', '.join(map(repr, rows.fields))}"
        )


def _detect(rows: Rows, candidates: tuple[str, ...], role: str) -> str:
    for name in candidates:
        if name in rows.fields:
            return name
    raise DataError(f"dataset {rows.source}: no {role} field found among {rows.fields}; name it with --{role}-field")


def _normalise(spec: str, rows: Rows, mapping: DatasetSpec) -> Dataset:
    prompt_field, answer_field, id_field = mapping.prompt_field, mapping.answer_field, mapping.id_field
    task_field, difficulty_field = mapping.task_field, mapping.difficulty_field
    assert prompt_field and answer_field, "load_dataset fills both in"
    columns = _Columns()
    gsm8k, kept_bytes, seen = False, 0, set[str]()
    wanted = [f for f in (prompt_field, answer_field, id_field, task_field, difficulty_field) if f]
    for number, rec in rows.read(wanted):
        where = rows.where(number)
        if len(columns) == data_read.MAX_ROWS:
            raise DataError(f"{where}: the dataset has over {data_read.MAX_ROWS:,} rows, the limit; take a subset")
        prompt = _required(rec, prompt_field, "prompt", where)
        answer = _required(rec, answer_field, "answer", where)
        if GSM8K_MARK in answer:
            answer, gsm8k = answer.rsplit(GSM8K_MARK, 1)[1].strip().replace(",", ""), True
            if not answer:
                raise DataError(
                    f"{where}: answer field {answer_field!r} has nothing after {GSM8K_MARK!r}; "
                    f"give the final answer there, or drop the row"
                )
        qid = _required(rec, id_field, "id", where) if id_field else f"q-{len(columns):06d}"
        seen.update(f for f in (task_field, difficulty_field) if f and rec.get(f) is not None)
        task = (_text(rec.get(task_field), task_field, where) if task_field else None) or DEFAULT_TASK
        size = sum(
            _size(text, where, name)
            for text, name in (
                (prompt, prompt_field),
                (answer, answer_field),
                (qid, id_field or "id"),
                (task, task_field or "task"),
            )
        )
        kept_bytes += size
        if kept_bytes > data_read.MAX_DATA_BYTES:
            raise DataError(
                f"{where}: the dataset holds over {data_read.MAX_DATA_BYTES:,} bytes of text, the limit; take a subset"
            )
        level = _level(rec.get(difficulty_field), difficulty_field, where) if difficulty_field else 0
        columns.append(number, size, level, id=qid, prompt=prompt, answer=answer, task=task)
    if not len(columns):
        raise DataError(f"dataset {rows.source} is empty: it holds no rows")
    for role, name in (("task", task_field), ("difficulty", difficulty_field)):
        if name and name not in seen and name not in rows.fields:
            raise DataError(
                f"dataset {rows.source}: no row has the field {name!r} to use as the {role} (--{role}-field); "
                f"its fields are {', '.join(map(repr, rows.fields))}"
            )
    duplicate = columns.first_duplicate_id() if id_field else None
    if duplicate:
        second, first, qid = duplicate
        raise DataError(
            f"{rows.where(second)}: duplicate id {qid!r} (first seen on {rows.unit} {first}); ids must be "
            f"unique, or drop --id-field to number the rows"
        )
    frame = columns.frame()
    picked = pick_reward(frame["answer"], frame["task"], gsm8k=gsm8k)
    reward = resolve_reward(mapping.reward or picked.name, probe=reward_probe(frame))
    digest = _content_hash(frame)
    if reward.name != picked.name:  # the same rows under another reward are another dataset to a profile
        digest = hashlib.sha256(f"{digest}:{reward.name}".encode()).hexdigest()[:16]
    if mapping.reward is None:
        reason = f"picked from the answers: {picked.reason} (--reward overrides)"
    elif reward.name == picked.name:
        reason = f"named, as the answers would pick it: {picked.reason}"
    else:
        reason = f"named with --reward, over {picked.name} that the answers would pick: {picked.reason}"
    return Dataset(
        spec=spec,
        frame=frame,
        hash=digest,
        reward=reward.name,
        source=rows.source,
        fields=rows.fields,
        mapping=replace(mapping, reward=reward.name),
        reward_reason=reason,
    )


def reward_probe(frame: pd.DataFrame) -> dict[str, list]:
    """What a custom reward is first called with: the first query twice, its own answer and an empty
    completion, with every column as TRL passes them."""
    first = frame.iloc[[0, 0]]
    return {"completions": [first["answer"].iloc[0], ""], **reward_columns(first)}


class _Columns:
    """The frame's columns, moved into Arrow every CHUNK_BYTES: Python never holds every row's strings."""

    def __init__(self) -> None:
        self.pending: dict[str, list[str]] = {name: [] for name in ("id", "prompt", "answer", "task")}
        self.chunks: dict[str, list] = {name: [] for name in self.pending}
        self.difficulty, self.lines = array("q"), array("q")  # 8 bytes a row each
        self.pending_bytes = 0

    def __len__(self) -> int:
        return len(self.lines)

    def append(self, line: int, size: int, difficulty: int, **text: str) -> None:
        for name, value in text.items():
            self.pending[name].append(value)
        self.difficulty.append(difficulty)
        self.lines.append(line)
        self.pending_bytes += size + 250  # + what Python spends on a row's objects
        if self.pending_bytes >= CHUNK_BYTES:
            self._flush()

    def _flush(self) -> None:
        for name, values in self.pending.items():
            self.chunks[name].append(pa.array(values, pa.large_string()))
            values.clear()
        self.pending_bytes = 0

    def first_duplicate_id(self) -> tuple[int, int, str] | None:
        """(line, line of its first use, id) of the first repeated id, found in Arrow."""
        self._flush()
        chunks = [chunk.indices.to_numpy() for chunk in pc.dictionary_encode(self._text("id")).chunks]
        codes = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
        first = np.unique(codes, return_index=True)[1]  # where each id is first seen
        if len(first) == len(codes):
            return None
        repeat = np.ones(len(codes), bool)
        repeat[first] = False
        second = int(repeat.argmax())
        return self.lines[second], self.lines[first[codes[second]]], self._text("id")[second].as_py()

    def _text(self, name: str) -> pa.ChunkedArray:
        return pa.chunked_array(self.chunks[name], pa.large_string())

    def frame(self) -> pd.DataFrame:
        self._flush()
        text = {name: self._text(name) for name in self.chunks}
        # pandas 3 infers Arrow-backed text, and takes these arrays without a copy; older pandas holds objects
        text = {
            name: pd.array(values, dtype=TEXT) if isinstance(TEXT, pd.StringDtype) else values.to_pylist()
            for name, values in text.items()
        }
        return pd.DataFrame({**text, "difficulty": np.array(self.difficulty, dtype=np.int64)}, columns=COLUMNS)


def _required(rec: dict, fld: str, role: str, where: str) -> str:
    if fld not in rec:
        raise DataError(f"{where}: missing {role} field {fld!r}; map it with --{role}-field")
    text = _text(rec[fld], fld, where)
    if text is None or not text.strip():
        raise DataError(
            f"{where}: {role} field {fld!r} is empty (null, NaN or blank); every row needs "
            f"{'an' if role[0] in 'aeiou' else 'a'} {role}: fill it in or drop the row"
        )
    return text


def _text(value, fld: str, where: str) -> str | None:
    """A value as the text it was written as: 2 is "2", a whole float 2.0 is "2"; None when it has no value."""
    if value is None or isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):  # rare: JSON keeps numbers as written and Arrow floats arrive as text
        text = (str(int(value)) if value.is_integer() else repr(value)) if math.isfinite(value) else None
    elif isinstance(value, (list, tuple)) and value and all(isinstance(m, dict) and "role" in m for m in value):
        raise DataError(
            f"{where}: field {fld!r} holds chat messages (a list of role/content turns), and sgpo "
            f"does not apply chat templates yet; give a plain-text prompt field (--prompt-field), or "
            f"join the messages' content into one string"
        )
    elif isinstance(value, (list, tuple, dict)):
        kind = "nested object" if isinstance(value, dict) else "list"
        raise DataError(f"{where}: field {fld!r} holds a {kind}; it must be text or a number")
    elif isinstance(value, (bytes, bytearray)):
        raise DataError(f"{where}: field {fld!r} holds binary data; store it as UTF-8 text")
    else:  # Decimal, dates: their own text
        text = str(value)
    return text


def _size(text: str, where: str, fld: str) -> int:
    """UTF-8 bytes of one kept field; refused over MAX_FIELD_BYTES, or holding a lone surrogate."""
    if text.isascii():
        size = len(text)
    else:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise DataError(
                f"{where}: field {fld!r} holds an unpaired surrogate (an escape in \\ud800-\\udfff "
                f"without its pair); fix the text"
            ) from None
    if size > data_read.MAX_FIELD_BYTES:
        raise too_long(where, fld, size)
    return size


def _level(value, fld: str, where: str) -> int:
    """The difficulty written in a field: its first whole number ("Level 3" is 3), 0 without one."""
    text = _text(value, fld, where)
    match = re.search(r"-?\d{1,9}", text) if text else None
    return int(match.group()) if match else 0


def _content_hash(frame: pd.DataFrame) -> str:
    """sha256 of frame.to_json(orient="values"), serialised a slice of rows at a time."""
    chars = frame["id"].str.len().to_numpy(dtype=np.int64, copy=True)
    for name in ("prompt", "answer", "task"):
        chars += frame[name].str.len().to_numpy(dtype=np.int64)
    by_chars = set((np.flatnonzero(np.diff(np.cumsum(chars) // HASH_SLICE_CHARS)) + 1).tolist())
    ends = sorted(by_chars | set(range(HASH_SLICE_ROWS, len(frame), HASH_SLICE_ROWS)))
    digest = hashlib.sha256(b"[")
    for i, (start, stop) in enumerate(zip([0, *ends], [*ends, len(frame)])):
        part = frame.iloc[start:stop].to_json(orient="values")  # "[[row],[row]]": the rows join with ","
        digest.update((b"," if i else b"") + part[1:-1].encode())
    digest.update(b"]")
    return digest.hexdigest()[:16]
