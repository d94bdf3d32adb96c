"""One GRPO step, ours against TRL's GRPOTrainer, on the same batch: rollouts/s and tokens/s side by side.

    .venv/bin/python bench/train_step.py [--model starter] [--queries 16] [--group-size 8] [--steps 6]
                                         [--rounds 2] [--threads 0] [--json]

Both sides: the starter policy, the same `queries` builtin:train prompts, G=8, temperature 1, 20 new
tokens, beta 0, AdamW at lr 5e-5, one optimizer step per batch. A step is generation + rewards +
forward/backward + optimizer. Ours is the engine's own step (sgpo.train.native.NativeEngine.step, strategy
grpo over a dataset of exactly these queries); TRL's is `GRPOTrainer.train()`, timed per step with a
callback. The first step of each side is a warm-up and not counted. Sides alternate for `rounds`
rounds and the median step time of each side is used, so a busy machine hurts both alike.
Prints the ratio ours / TRL in rollouts per second (target >= 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402

from sgpo.data import load_dataset  # noqa: E402
from sgpo.model import load_model, load_tokenizer, resolve_model  # noqa: E402
from sgpo.store import Store  # noqa: E402
from sgpo.tasks.rewards import exact_match_reward  # noqa: E402
from sgpo.train import TrainConfig  # noqa: E402
from sgpo.train.loop import Trainer  # noqa: E402
from sgpo.train.setup import prepare  # noqa: E402


def ours(model: str, data: Path, args, work: Path, round_: int) -> list[dict]:
    store = Store(work / f"ours-{round_}" / "sgpo.db")
    cfg = TrainConfig(
        strategy="grpo",
        dataset=str(data),
        model=model,
        eval_every=0,
        group_size=args.group_size,
        batch_rollouts=args.queries * args.group_size,
        max_new_tokens=args.max_new_tokens,
        warmup_steps=0,
        lr=5e-5,
        threads=args.threads,
        steps=args.steps + 1,
        seed=round_,
    )
    prep = prepare(cfg, store, name="bench")
    trainer = Trainer(prep, store, store.create_run(**prep.run_row()), log=lambda msg: None)
    out = []
    for step in range(1, args.steps + 2):
        t0 = time.perf_counter()
        data_ = trainer.engine.step(step)[0]
        out.append(
            {
                "seconds": time.perf_counter() - t0,
                "rollouts": data_["rollouts"],
                "tokens": data_["tokens_prompt"] + data_["tokens_completion"],
            }
        )
    return out[1:]


def trl(model_dir: Path, rows: list[dict], args, work: Path, round_: int) -> list[dict]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    class Clock(TrainerCallback):
        def __init__(self):
            self.steps, self.t0, self.tokens = [], 0.0, 0.0

        def on_step_begin(self, *a, **k):
            self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **k):
            self.steps.append(
                {
                    "seconds": time.perf_counter() - self.t0,
                    "rollouts": args.queries * args.group_size,
                    "tokens": state.num_input_tokens_seen - self.tokens,
                }
            )
            self.tokens = state.num_input_tokens_seen

    config = GRPOConfig(
        output_dir=str(work / f"trl-{round_}"),
        use_cpu=True,
        report_to="none",
        num_generations=args.group_size,
        per_device_train_batch_size=args.queries * args.group_size,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_k=0,
        beta=0.0,
        learning_rate=5e-5,
        max_steps=args.steps + 1,
        logging_steps=1,
        save_strategy="no",
        seed=round_,
        bf16=False,
        disable_tqdm=True,
    )
    clock = Clock()
    trainer = GRPOTrainer(
        model=load_model(model_dir),
        args=config,
        train_dataset=Dataset.from_list(rows),
        reward_funcs=exact_match_reward,
        processing_class=load_tokenizer(model_dir),
        callbacks=[clock],
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # its per-step log dicts would bury the table
    trainer.train()
    return clock.steps[1:]


def summary(steps: list[dict]) -> dict:
    seconds = statistics.median(s["seconds"] for s in steps)
    rollouts, tokens = steps[0]["rollouts"], statistics.median(s["tokens"] for s in steps)
    return {
        "steps": len(steps),
        "step_seconds": seconds,
        "rollouts_per_s": rollouts / seconds,
        "tokens_per_s": tokens / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="starter")
    ap.add_argument("--queries", type=int, default=16)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads or os.cpu_count())
    ref = resolve_model(args.model)
    frame = load_dataset("builtin:train").frame
    rows = frame.sample(n=args.queries, random_state=0).to_dict("records")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "batch.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        ours_steps, trl_steps = [], []
        for r in range(args.rounds):
            ours_steps += ours(args.model, data, args, work, r)
            trl_steps += trl(ref.path, [{"prompt": x["prompt"], "answer": x["answer"]} for x in rows], args, work, r)
    result = {
        "model": args.model,
        "n_params": ref.n_params,
        "queries": args.queries,
        "group_size": args.group_size,
        "rollouts_per_step": args.queries * args.group_size,
        "threads": torch.get_num_threads(),
        "ours": summary(ours_steps),
        "trl": summary(trl_steps),
    }
    result["ratio_rollouts_per_s"] = result["ours"]["rollouts_per_s"] / result["trl"]["rollouts_per_s"]
    result["ratio_tokens_per_s"] = result["ours"]["tokens_per_s"] / result["trl"]["tokens_per_s"]
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.model} ({ref.n_params:,} params), {args.queries} queries x G={args.group_size} = "
        f"{result['rollouts_per_step']} rollouts a step, {result['threads']} threads, median of "
        f"{result['ours']['steps']} / {result['trl']['steps']} steps"
    )
    print(f"{'':>6} {'s/step':>8} {'rollouts/s':>11} {'tokens/s':>10}")
    for side in ("ours", "trl"):
        s = result[side]
        print(f"{side:>6} {s['step_seconds']:>8.3f} {s['rollouts_per_s']:>11.1f} {s['tokens_per_s']:>10.0f}")
    print(
        f"ratio ours/TRL: {result['ratio_rollouts_per_s']:.2f}x rollouts/s, {result['ratio_tokens_per_s']:.2f}x "
        f"tokens/s (target >= 1.0)"
    )


if __name__ == "__main__":
    main()
