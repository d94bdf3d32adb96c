"""A dataset as it is named once and loaded the same way ever after: spec, field mapping and reward.

    spec = DatasetSpec("mine.jsonl", prompt_field="Question Text", answer_field="gold_label", reward="math")
    ds = load_dataset(spec)                            # sgpo.data: fields missing from the file are refused
    store.record_dataset(**ds.record())                # the mapping goes into the store with the dataset
    ds = load_dataset(recall(store, "mine.jsonl"))     # a later command: the same mapping, nothing repeated
    ds = profiled_dataset(store, profile_row)          # the rows a profile measured, loaded as it loaded them

(load_dataset, recall and profiled_dataset live in sgpo/data.py; this module holds the value alone.)

A field left None is detected (prompt, answer and id from the usual names, `task` and `difficulty`/`level`
when present) and the reward picked from the answers (sgpo.tasks.rewards.pick_reward). What a load
actually used comes back as `Dataset.mapping`, every field explicit: that is what the store records, so
a later load reads exactly the same rows with the same reward. What is given on a command line now wins
over what was recorded, field by field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

ROLES = ("prompt", "answer", "id", "task", "difficulty")
FIELDS = tuple(f"{role}_field" for role in ROLES) + ("reward",)  # how a dataset file is read and scored


@dataclass(frozen=True)
class DatasetSpec:
    spec: str  # builtin:NAME, a .jsonl/.csv/.parquet file, or hf:REPO[:CONFIG][:SPLIT]
    prompt_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None  # None: rows are numbered q-000000, q-000001, ...
    task_field: str | None = None  # None: every query's task is "default"
    difficulty_field: str | None = None  # None: every query's difficulty is 0
    reward: str | None = None  # exact | math | math-lenient | MODULE:FUNCTION; None: picked from the answers

    @classmethod
    def of(cls, spec: str | DatasetSpec, **given) -> DatasetSpec:
        """`spec` (a string or a DatasetSpec) with every non-None option in `given` set on it."""
        base = spec if isinstance(spec, DatasetSpec) else cls(str(spec))
        return replace(base, **{k: v for k, v in given.items() if v is not None})

    def over(self, recorded: DatasetSpec | dict | None) -> DatasetSpec:
        """This spec, with each field it leaves None taken from `recorded` (a mapping read back)."""
        if not recorded:
            return self
        recorded = recorded if isinstance(recorded, DatasetSpec) else DatasetSpec.from_dict(recorded)
        taken = {f.name: getattr(recorded, f.name) for f in fields(self) if getattr(self, f.name) is None}
        return replace(self, **{k: v for k, v in taken.items() if v is not None})

    def __str__(self) -> str:
        """The spec as written: what names the data (the mapping is how it is read)."""
        return self.spec

    def field(self, role: str) -> str | None:
        return getattr(self, f"{role}_field")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DatasetSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def cli_args(self) -> list[str]:
        """The options that name this mapping (`--prompt-field X ... --reward R`), for a command to show or to
        hand to another process; the spec itself is the command's positional argument."""
        args: list[str] = []
        for role in ROLES:
            name = self.field(role)
            if name is not None:
                args += [f"--{role}-field", name]
        return args + (["--reward", self.reward] if self.reward else [])
