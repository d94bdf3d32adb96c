"""Plans written for other trainers: TRL's GRPOTrainer takes one `num_generations` per run, so a plan
goes to it phase by phase.

    export_trl(plan, profile_row, Path("trl-plan"))     # phase-K.jsonl + manifest.json

Files are written to a temporary name and renamed, so a killed export leaves no half-written phase.
"""

from __future__ import annotations

import json
from pathlib import Path

from sgpo.data import load_dataset
from sgpo.errors import DataError


def _target(out_dir, profile_row: dict, spec: str | None, option: str):
    """(folder, spec, dataset) of an export: the folder made, the dataset the profile was made on."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{option} {out_dir}: that path is a file; give a folder (it is created if missing)")
    spec = spec or profile_row["dataset_spec"]
    ds = load_dataset(spec)
    if ds.hash != profile_row["dataset_hash"]:
        raise DataError(
            f"dataset {spec} (hash {ds.hash}) is not the data profile {profile_row['id']} was made from "
            f"(hash {profile_row['dataset_hash']}): pass the right one with --dataset"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir, spec, ds


def export_trl(plan, profile_row: dict, out_dir: Path, spec: str | None = None) -> Path:
    """phase-K.jsonl (prompt, answer, id, task, difficulty) per phase + manifest.json with num_generations.
    `spec`: the dataset the profile was made on (default: the profile's own spec)."""
    out_dir, spec, ds = _target(out_dir, profile_row, spec, "--export-trl")
    frame = ds.frame.set_index("id")
    manifest = {
        "profile_id": profile_row["id"],
        "dataset": spec,
        "dataset_hash": ds.hash,
        "config": plan.config.to_dict(),
        "phases": [],
    }
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
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out_dir / "manifest.json")
    return out_dir


def export_verl(plan, profile_row: dict, out_dir: Path, spec: str | None = None, *, ability: str | None = None) -> Path:
    """phase-K.parquet per phase in verl's RL dataset schema, in the plan's order, + manifest.json.

    verl takes one `actor_rollout_ref.rollout.n` per run and has no curriculum sampler any more, so a
    plan runs there as one training run per phase over a pre-ordered parquet with `data.shuffle=False`.
    Rows: data_source, prompt (a chat message list), ability, reward_model {style: rule, ground_truth},
    extra_info {id, index, p_hat, group_size, phase}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir, spec, ds = _target(out_dir, profile_row, spec, "--export-verl")
    frame = ds.frame.set_index("id")
    p_hat = plan.queries["p_hat"].to_numpy()
    source = spec.split(":", 1)[-1] if spec.startswith(("builtin:", "hf:")) else Path(spec).stem
    manifest = {
        "profile_id": profile_row["id"],
        "dataset": spec,
        "dataset_hash": ds.hash,
        "config": plan.config.to_dict(),
        "phases": [],
    }
    for ph in plan.phases:
        ids = ph.ids.tolist()
        rows = frame.loc[ids]
        g = ph.group_size or int(ph.group_sizes.max())
        table = pa.table(
            {
                "data_source": [source] * ph.count,
                "prompt": [[{"role": "user", "content": p}] for p in rows["prompt"]],
                "ability": [ability or ("math" if ds.reward == "math" else t) for t in rows["task"]],
                "reward_model": [{"style": "rule", "ground_truth": a} for a in rows["answer"]],
                "extra_info": [
                    {"id": i, "index": int(pos), "p_hat": float(p_hat[pos]), "group_size": int(s), "phase": ph.index}
                    for i, pos, s in zip(ids, ph.positions, ph.group_sizes)
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
                ],
            }
        )
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(out_dir / "manifest.json")
    return out_dir
