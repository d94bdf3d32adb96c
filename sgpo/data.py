"""Loading any dataset through one spec string, used by every command and page.

    builtin:train                 the shipped task suite (`sgpo tasks` lists the names)
    path/to/file.jsonl|csv|parquet with --prompt-field / --answer-field / --id-field, or auto-detected
    hf:REPO[:CONFIG][:SPLIT]      through the `datasets` library

Every dataset becomes the same frame: id, prompt, answer, task, difficulty. GSM8K's format (the gold
answer after '####') is recognised. The content hash is taken over that frame, so a profile can be
matched to exactly the data it was made from, whatever file it came from.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sgpo.errors import DataError
from sgpo.tasks import builtin

PROMPT_FIELDS = ("prompt", "question", "problem", "query", "input", "instruction")
ANSWER_FIELDS = ("answer", "solution", "target", "output", "label", "final_answer")
ID_FIELDS = ("id", "idx", "uid", "query_id", "unique_id")
DIFFICULTY_FIELDS = ("difficulty", "level")
COLUMNS = ["id", "prompt", "answer", "task", "difficulty"]
GSM8K_MARK = "####"


@dataclass
class Dataset:
    spec: str
    frame: pd.DataFrame  # COLUMNS, one row per query, in file order
    hash: str  # sha256 of the normalised rows, first 16 hex digits
    reward: str  # "exact" or "math"
    source: str  # file path or hub id
    fields: list[str] = field(default_factory=list)  # the source's own field names

    def __len__(self) -> int:
        return len(self.frame)

    def difficulty_counts(self) -> dict[str, dict[str, int]]:
        counts = self.frame.groupby(["task", "difficulty"]).size()
        out: dict[str, dict[str, int]] = {}
        for (task, level), n in counts.items():
            out.setdefault(str(task), {})[str(level)] = int(n)
        return out

    def reward_fn(self):
        from sgpo.tasks.rewards import reward_function

        return reward_function(self.reward)


def load_dataset(spec: str, *, prompt_field: str | None = None, answer_field: str | None = None,
                 id_field: str | None = None, reward: str | None = None) -> Dataset:
    """Read, validate and normalise a dataset; DataError naming file, line and field on bad input."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        try:
            path, family = builtin.builtin_file(name)
        except KeyError:
            raise DataError(f"unknown built-in dataset {name!r}: choose one of "
                            f"{', '.join('builtin:' + n for n in builtin.builtin_names())}") from None
        records = _read_jsonl(path)
        if family:
            records = [(line, r) for line, r in records if r.get("task") == family]
        return _normalise(spec, str(path), records, "prompt", "answer", "id", reward or "exact")
    if spec.startswith("hf:"):
        records, source = _read_hub(spec)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise DataError(f"dataset file {path} does not exist (a spec is builtin:NAME, a .jsonl/.csv/.parquet "
                            f"path, or hf:REPO[:CONFIG][:SPLIT])")
        if path.is_dir():
            raise DataError(f"dataset path {path} is a folder: give a .jsonl, .csv or .parquet file")
        records, source = _read_file(path), str(path)
    if not records:
        raise DataError(f"dataset {source} is empty: it holds no rows")
    fields = list(records[0][1].keys())
    prompt_field = prompt_field or _detect(fields, PROMPT_FIELDS, "prompt", source)
    answer_field = answer_field or _detect(fields, ANSWER_FIELDS, "answer", source)
    id_field = id_field or next((f for f in ID_FIELDS if f in fields), None)
    return _normalise(spec, source, records, prompt_field, answer_field, id_field, reward)


def _detect(fields: list[str], candidates: tuple[str, ...], role: str, source: str) -> str:
    for name in candidates:
        if name in fields:
            return name
    raise DataError(f"dataset {source}: no {role} field found among {fields}; name it with --{role}-field")


def _read_file(path: Path) -> list[tuple[int, dict]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(path)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
            first_line = 2  # line 1 holds the header
        elif suffix in (".parquet", ".pq"):
            frame, first_line = pd.read_parquet(path), 1
        else:
            raise DataError(f"dataset file {path}: unknown format {suffix!r}; use .jsonl, .csv or .parquet")
    except UnicodeDecodeError as exc:
        raise DataError(f"dataset file {path} is not UTF-8 (bad byte at offset {exc.start}): re-save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"dataset {path} is empty: it holds no rows") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"dataset file {path} could not be parsed: {exc}") from None
    return [(first_line + i, r) for i, r in enumerate(frame.to_dict(orient="records"))]


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (bad byte at offset {exc.start}); re-save the file as UTF-8") from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: malformed JSON ({exc.msg} at column {exc.colno}); "
                            f"each line must be one JSON object") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        records.append((number, row))
    return records


def _read_hub(spec: str) -> tuple[list[tuple[int, dict]], str]:
    parts = spec[3:].split(":")
    repo, config = parts[0], (parts[1] or None) if len(parts) > 1 else None
    split = parts[2] if len(parts) > 2 else "train"
    if not repo:
        raise DataError(f"dataset spec {spec!r}: expected hf:REPO[:CONFIG][:SPLIT]")
    try:
        import datasets

        ds = datasets.load_dataset(repo, config, split=split)
    except Exception as exc:  # offline, unknown repo, missing config or split: one clear message
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not load {spec} from the Hugging Face Hub ({type(exc).__name__}: {first}); "
                        f"offline, download it elsewhere and pass a local .jsonl/.parquet file") from None
    return [(i + 1, dict(r)) for i, r in enumerate(ds)], f"{repo}:{config or ''}:{split}"


def _normalise(spec, source, records, prompt_field, answer_field, id_field, reward) -> Dataset:
    if not records:
        raise DataError(f"dataset {source} is empty: it holds no rows")
    name = Path(source).stem if not spec.startswith("hf:") else spec[3:].split(":")[0].split("/")[-1]
    rows, seen, gsm8k = [], {}, False
    for position, (line, rec) in enumerate(records):
        for role, fld in (("prompt", prompt_field), ("answer", answer_field)):
            if fld not in rec or rec[fld] is None or str(rec[fld]).strip() == "":
                raise DataError(f"{source}:{line}: missing {role} field {fld!r}; map it with --{role}-field")
        answer = str(rec[answer_field])
        if GSM8K_MARK in answer:
            answer, gsm8k = answer.rsplit(GSM8K_MARK, 1)[1].strip().replace(",", ""), True
        qid = str(rec[id_field]) if id_field and rec.get(id_field) not in (None, "") else f"{name}-{position:06d}"
        if qid in seen:
            raise DataError(f"{source}:{line}: duplicate id {qid!r} (first seen on line {seen[qid]}); ids must be "
                            f"unique, or drop --id-field to number the rows")
        seen[qid] = line
        rows.append({"id": qid, "prompt": str(rec[prompt_field]), "answer": answer,
                     "task": str(rec.get("task") or name), "difficulty": _level(rec)})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    digest = hashlib.sha256(frame.to_json(orient="values").encode()).hexdigest()[:16]
    reward = reward or ("math" if gsm8k or _looks_mathy(frame["answer"]) else "exact")
    if reward not in ("exact", "math"):
        raise DataError(f"--reward must be 'exact' or 'math' (got {reward!r})")
    return Dataset(spec=spec, frame=frame, hash=digest, reward=reward, source=source,
                   fields=list(records[0][1].keys()))


def _level(rec: dict) -> int:
    for fld in DIFFICULTY_FIELDS:
        if fld in rec and rec[fld] not in (None, ""):
            match = re.search(r"-?\d+", str(rec[fld]))
            return int(match.group()) if match else 0
    return 0


def _looks_mathy(answers: pd.Series) -> bool:
    sample = answers.head(200).astype(str).str.strip()
    return bool(sample.str.fullmatch(r"-?[\d,]*\.?\d+|.*\\(frac|boxed|sqrt).*|\$.*\$").mean() > 0.9)
