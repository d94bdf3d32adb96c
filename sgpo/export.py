"""Plans written for other trainers: TRL's GRPOTrainer and verl take one group size per run, so a plan goes
to them phase by phase.

    export_trl(plan, profile_row, Path("trl-plan"), store=store)     # phase-K.jsonl + manifest.json
    export_verl(plan, profile_row, Path("verl-plan"), store=store)   # phase-K.parquet + manifest.json
    written(Path("verl-plan"))                                        # the files the export wrote

The rows are the profile's own (sgpo.data.profiled_dataset: its recorded field mapping and reward), and the
manifest names the reward (`reward`), so the trainer scores them as the profile did. A folder that holds an
older export is cleared of that export's files (those its manifest lists, and phase-K files) once the new
ones are written; a folder holding anything else is refused before anything is written. Files are written to
a temporary name and renamed, so a killed export leaves no half-written phase.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sgpo.data import Dataset, DatasetSpec, profiled_dataset, reward_probe
from sgpo.errors import DataError
from sgpo.tasks import verl_reward
from sgpo.tasks.rewards import RULES, resolve_reward

MANIFEST = "manifest.json"
PHASE_FILE = re.compile(r"phase-\d+\.(jsonl|parquet)(\.tmp)?")  # what an export names its phases
MATH_REWARDS = ("math", "math-lenient")


def dataset_name(spec: str) -> str:
    """A stable name for a dataset (verl's `data_source`, the default of --data-source): a hub repo's id
    (verl's own convention, e.g. openai/gsm8k), `sgpo/NAME` for a built-in set, and for a file its folder and
    name without the suffix (data/gsm8k/test.jsonl is gsm8k/test): not the bare stem, which names a split
    ('test') more often than a dataset."""
    if spec.startswith("hf:"):
        return spec[3:].split(":")[0]
    if spec.startswith("builtin:"):
        return "sgpo/" + spec.split(":", 1)[1]
    path = Path(spec).resolve()
    return f"{path.parent.name}/{path.stem}" if path.parent.name else path.stem


def written(out_dir: Path) -> list[Path]:
    """The files an export in `out_dir` wrote: its phase files in plan order, then the manifest."""
    manifest = json.loads((Path(out_dir) / MANIFEST).read_text())
    return [Path(out_dir) / p["file"] for p in manifest["phases"]] + [Path(out_dir) / MANIFEST]


def _target(out_dir, profile_row: dict, spec: str | DatasetSpec | None, option: str, store, reward: str | None):
    """(folder, dataset, stale files) of an export: the folder checked (a missing one is made), the rows the
    profile measured, read as it read them (scored with `reward` when one is named), and an older export's
    files to remove once the new ones exist."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{option} {out_dir}: that path is a file; give a folder (it is created if missing)")
    ds = profiled_dataset(store, profile_row, spec=spec)
    if reward is not None and resolve_reward(reward).name != ds.reward:
        named = resolve_reward(reward, probe=reward_probe(ds.frame)).name
        why = f"named with --reward for the export, over {ds.reward} that profile {profile_row['name']!r} measured"
        ds = replace(ds, reward=named, reward_reason=why)
    stale = _older_export(out_dir, option)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir.resolve(), ds, stale  # said as an absolute path: where the files went, wherever one runs


def _older_export(out_dir: Path, option: str) -> list[Path]:
    """The files of an older export in `out_dir` (its manifest, the files it lists, phase-K files); DataError
    when the folder holds anything else, so that nothing of the user's is overwritten or left mixed in."""
    if not out_dir.is_dir():
        return []
    listed: set[str] = set()
    try:
        phases = json.loads((out_dir / MANIFEST).read_text()).get("phases", [])
        listed = {p["file"] for p in phases if isinstance(p.get("file"), str) and Path(p["file"]).name == p["file"]}
    except (OSError, ValueError, AttributeError, TypeError):  # no manifest, or not one of ours
        pass
    ours: list[Path] = []
    foreign: list[Path] = []
    for path in sorted(out_dir.iterdir()):
        mine = path.name in listed or path.name in (MANIFEST, MANIFEST + ".tmp") or PHASE_FILE.fullmatch(path.name)
        (ours if mine and path.is_file() else foreign).append(path)
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise DataError(
            f"{option} {out_dir}: the folder holds {foreign[0].name}{more}, which no sgpo export wrote; give an "
            f"empty or new folder (an older export there is replaced, nothing else is touched)"
        )
    return ours


def _finish(out_dir: Path, manifest: dict, stale: list[Path]) -> Path:
    """Write the manifest, then remove what the older export left that this one did not write."""
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out_dir / MANIFEST)
    kept = {p["file"] for p in manifest["phases"]} | {MANIFEST}
    for path in stale:
        if path.name not in kept:
            path.unlink(missing_ok=True)
    return out_dir


def _manifest(plan, profile_row: dict, ds: Dataset) -> dict:
    return {
        "profile_id": profile_row["id"],
        "dataset": ds.source,
        "dataset_hash": ds.hash,
        "reward": ds.reward,
        "reward_reason": ds.reward_reason,
        "config": plan.config.to_dict(),
        "phases": [],
    }


def export_trl(
    plan,
    profile_row: dict,
    out_dir: Path,
    spec: str | DatasetSpec | None = None,
    *,
    store=None,
    reward: str | None = None,
) -> Path:
    """phase-K.jsonl (prompt, answer, id, task, difficulty) per phase + manifest.json with num_generations and
    the reward (`sgpo.tasks.rewards.resolve_reward(manifest["reward"]).trl` is the function to hand TRL).
    `spec`: where the profiled data is read from (default: what the profile recorded); `store`: the store
    holding its mapping; `reward`: score the rows with this reward instead of the profile's."""
    out_dir, ds, stale = _target(out_dir, profile_row, spec, "--export-trl", store, reward)
    frame = ds.frame.set_index("id")
    manifest = _manifest(plan, profile_row, ds)
    for ph in plan.phases:
        name = f"phase-{ph.index}.jsonl"
        rows = frame.loc[ph.ids].reset_index()
        tmp = out_dir / (name + ".tmp")
        rows[["prompt", "answer", "id", "task", "difficulty"]].to_json(tmp, orient="records", lines=True)
        tmp.replace(out_dir / name)
        sizes = sorted(set(ph.group_sizes.tolist()))
        manifest["phases"].append(
            {
                "phase": ph.index,
                "file": name,
                "queries": ph.count,
                "num_generations": ph.group_size or None,
                "group_sizes": sizes,
            }
        )
    return _finish(out_dir, manifest, stale)


def export_verl(
    plan,
    profile_row: dict,
    out_dir: Path,
    spec: str | DatasetSpec | None = None,
    *,
    store=None,
    reward: str | None = None,
    ability: str | None = None,
    data_source: str | None = None,
) -> Path:
    """phase-K.parquet per phase in verl's RL dataset schema, in the plan's order, + manifest.json.

    verl takes one `actor_rollout_ref.rollout.n` per run and has no curriculum sampler any more, so a
    plan runs there as one training run per phase over a pre-ordered parquet with `data.shuffle=False`.
    Rows: data_source (--data-source, default dataset_name()), prompt (a chat message list), ability,
    reward_model {style: rule, ground_truth}, extra_info {id, index, p_hat, group_size, phase, and what
    sgpo.tasks.verl_reward.compute_score needs: the reward's name, task, difficulty (and the prompt for a
    user's function)}. Each phase's command hooks that compute_score up (custom_reward_function lines)."""
    out_dir, ds, stale = _target(out_dir, profile_row, spec, "--export-verl", store, reward)
    frame = ds.frame.set_index("id")
    p_hat = plan.queries["p_hat"].to_numpy()
    source = data_source or dataset_name(ds.spec)
    manifest = {**_manifest(plan, profile_row, ds), "data_source": source}
    for ph in plan.phases:
        ids = ph.ids.tolist()
        rows = frame.loc[ids].reset_index()
        g = ph.group_size or int(ph.group_sizes.max())
        table = pa.table(
            {
                "data_source": [source] * ph.count,
                "prompt": [[{"role": "user", "content": p}] for p in rows["prompt"]],
                "ability": [ability or ("math" if ds.reward in MATH_REWARDS else t) for t in rows["task"]],
                "reward_model": [{"style": "rule", "ground_truth": a} for a in rows["answer"]],
                "extra_info": [
                    {
                        "index": int(pos),
                        "p_hat": float(p_hat[pos]),
                        "group_size": int(s),
                        "phase": ph.index,
                        **verl_reward.row_info(ds.reward, query),
                    }
                    for query, pos, s in zip(rows.to_dict("records"), ph.positions, ph.group_sizes)
                ],
            }
        )
        name = f"phase-{ph.index}.parquet"
        tmp = out_dir / (name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(out_dir / name)
        manifest["phases"].append(
            {
                "phase": ph.index,
                "file": name,
                "queries": ph.count,
                "rollout_n": g,
                "mixed_group_sizes": sorted(set(ph.group_sizes.tolist())) if not ph.group_size else None,
                "command": [
                    "python3",
                    "-m",
                    "verl.trainer.main_ppo",
                    "algorithm.adv_estimator=grpo",
                    f"data.train_files={out_dir.resolve() / name}",
                    "data.shuffle=False",
                    f"actor_rollout_ref.rollout.n={g}",
                    *verl_reward.command_lines(),
                ],
            }
        )
    if ds.reward not in RULES:
        manifest["note"] = (
            f"the reward {ds.reward} is your own function: the python that runs verl must import sgpo and it"
        )
    return _finish(out_dir, manifest, stale)
