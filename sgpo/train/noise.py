"""The critical-batch gauge: the simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al.
2018, "An Empirical Model of Large-Batch Training"), read every step off our engine's gradient accumulation.

    chunks = split_chunks(members, informative, k=2)     # the step's trained groups in k chunks of whole groups
    probe = ChunkNorms(model)                            # grpo.accumulate_gradients drives it, chunk by chunk
    gauge = NoiseScale()
    row = gauge.update(probe.chunk_sq, probe.chunk_rollouts, probe.step_sq, informative=40, rollouts=256)
    row["noise_scale_rollouts"]                          # the critical batch, in rollouts a step (smoothed)

The step's informative groups are split into k >= 2 chunks of whole groups (a group is the sampling unit: its
rollouts share one baseline, so a chunk never splits one), and each chunk's micro-batches run one after the
other. Between chunks the accumulating `.grad` is read: each chunk's own mean gradient G_b (b: its informative
rollouts) and, at the end, the whole step's G_B (B: all informative rollouts). McCandlish's two-batch unbiased
estimates follow, with b the harmonic mean of the chunk sizes (E|G_bj|^2 = |G|^2 + tr(Sigma) / b_j for each
chunk, so the mean over chunks has 1 / b = mean of 1 / b_j):

    |G|^2     ~ (B |G_B|^2 - b |G_b|^2) / (B - b)
    tr(Sigma) ~ (|G_b|^2 - |G_B|^2) / (1 / b - 1 / B)

Both are averaged over steps (an EMA with Adam's bias correction) before dividing: one step's estimates are
noisy, heavy-tailed and often negative. The sample is an informative rollout: a zero-advantage group adds
nothing to the gradient (with beta = 0), so it is left out of every count, whether the engine skips it or
trains it. The scale is converted to rollouts a step by the share of the step's rollouts that were informative
(EMA too): B_rollouts = B_informative / share. A step of R rollouts is at the critical batch when it holds
B_informative informative rollouts; well above it, fewer rollouts a step would reach the same loss for less
compute (step-limited); well below, denser steps learn more per step (sample-limited). sgpo/gauge.py says which
in words.

Cost: the gradients are read once per chunk (a pass over them) and one fp32 copy of them is kept while the
step accumulates (4 bytes a parameter); the chunks' micro-batches are smaller than one length-sorted run over
the whole step would give (bench/gauge_overhead.py measures the total).
"""

from __future__ import annotations

import math

import torch

# about 100 steps of memory: per-step estimates are heavy-tailed; in the research pilot's runs the ratio swung
# 5-10x (q10-q90 over a run's second half) at 0.95, within about 2x at 0.99
EMA_DECAY = 0.99
METRICS = ("noise_scale_informative", "noise_scale_rollouts", "noise_informative_share", "noise_g2", "noise_trace")


def split_chunks(members: list[list[int]], informative: list[bool], k: int) -> list[list[int]]:
    """The trained sequences as one chunk, or (k >= 2 and at least two informative groups) as min(k, informative
    groups) chunks of whole groups balanced by informative rollouts (largest group first, into the lightest
    chunk). `members`: each trained group's sequence indices; `informative`: whether each has an advantage.
    Zero-advantage groups (trained only with skipping off) join the chunk with the fewest sequences."""
    everything = [i for m in members for i in m]
    n_informative = sum(informative)
    if k < 2 or n_informative < 2:
        return [everything] if everything else []
    chunks: list[list[int]] = [[] for _ in range(min(k, n_informative))]
    weight = [0] * len(chunks)
    order = sorted(range(len(members)), key=lambda j: (not informative[j], -len(members[j])))
    for j in order:
        if informative[j]:
            c = min(range(len(chunks)), key=lambda i: weight[i])
            weight[c] += len(members[j])
        else:
            c = min(range(len(chunks)), key=lambda i: len(chunks[i]))
        chunks[c].extend(members[j])
    return chunks


class ChunkNorms:
    """Squared norms of each chunk's own mean gradient and of the whole step's, read off the accumulating .grad.

    Every micro-batch's loss is divided by the whole batch's normaliser (tokens or sequences, zero-advantage
    groups included: sgpo/train/grpo.py), so a chunk's accumulated gradient is its own mean gradient (over its
    informative tokens or sequences, `own`) times own / total; likewise the step's."""

    def __init__(self, model, total: int):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.seen: list[torch.Tensor | None] = [None] * len(self.params)  # .grad after the last chunk (fp32)
        self.total = total
        self.chunk_sq: list[float] = []
        self.chunk_rollouts: list[int] = []
        self.step_sq = math.nan

    def chunk_done(self, rollouts: int, own: int) -> None:
        """A chunk of `rollouts` informative rollouts whose mean is over `own` tokens or sequences is done."""
        parts = []  # summed on the device, read once: no host sync per parameter
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad.detach().float()
            seen = self.seen[i]
            parts.append((grad if seen is None else grad - seen).pow(2).sum().double())
            self.seen[i] = grad.clone() if seen is None else seen.copy_(grad)
        sq = float(torch.stack(parts).sum()) if parts else 0.0
        self.chunk_sq.append(sq * (self.total / max(own, 1)) ** 2)
        self.chunk_rollouts.append(rollouts)

    def step_done(self, own: int) -> None:
        """Every chunk is done; the step's mean is over `own` informative tokens or sequences."""
        parts = [s.pow(2).sum().double() for s in self.seen if s is not None]
        sq = float(torch.stack(parts).sum()) if parts else 0.0
        self.step_sq = sq * (self.total / max(own, 1)) ** 2
        self.seen = []  # the copy is not kept past the step


class NoiseScale:
    """The gauge's running state: EMAs of the per-step |G|^2 and tr(Sigma) estimates and of the informative share."""

    def __init__(self, decay: float = EMA_DECAY):
        self.decay = decay
        # EMA sums and their weights (the bias correction): the gradient estimates move on steps with two
        # chunks or more, the informative share on every step
        self.sums = {"g2": 0.0, "trace": 0.0, "informative": 0.0, "rollouts": 0.0}
        self.weights = {"gradient": 0.0, "share": 0.0}

    def _ema(self, keys: tuple[str, ...], values: tuple[float, ...], weight: str) -> None:
        d = self.decay
        for key, value in zip(keys, values):
            self.sums[key] = d * self.sums[key] + (1 - d) * value
        self.weights[weight] = d * self.weights[weight] + (1 - d)

    def update(
        self, chunk_sq: list[float], chunk_rollouts: list[int], step_sq: float, *, informative: int, rollouts: int
    ) -> dict:
        """Fold in one step: its chunks' and whole step's squared mean-gradient norms, and its informative and
        generated rollouts. Returns the step's metrics (METRICS, names in sgpo/vocab.py): this step's own
        estimates when it had two chunks, and the smoothed gauge once any step had (the scale is inf while the
        smoothed |G|^2 is not above zero: the noise still hides the mean gradient)."""
        if rollouts:
            self._ema(("informative", "rollouts"), (float(informative), float(rollouts)), "share")
        row: dict[str, float] = {}
        if len(chunk_sq) >= 2 and math.isfinite(step_sq):
            big = float(sum(chunk_rollouts))
            small = len(chunk_rollouts) / sum(1.0 / b for b in chunk_rollouts)  # harmonic mean of chunk sizes
            small_sq = sum(chunk_sq) / len(chunk_sq)
            row["noise_g2"] = (big * step_sq - small * small_sq) / (big - small)
            row["noise_trace"] = (small_sq - step_sq) / (1.0 / small - 1.0 / big)
            self._ema(("g2", "trace"), (row["noise_g2"], row["noise_trace"]), "gradient")
        if not self.weights["gradient"]:
            return row
        g2, trace = (self.sums[k] / self.weights["gradient"] for k in ("g2", "trace"))
        scale = trace / g2 if g2 > 0 else math.inf
        share = self.sums["informative"] / self.sums["rollouts"] if self.sums["rollouts"] else math.nan
        return {
            **row,
            "noise_scale_informative": scale,
            "noise_scale_rollouts": scale / share if share > 0 else math.inf,
            "noise_informative_share": share,
        }

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "weights": dict(self.weights), "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.sums, self.weights = dict(state["sums"]), dict(state["weights"])
        self.decay = float(state["decay"])
