"""The critical-batch gauge: the simple gradient noise scale B_simple = tr(Sigma) / |G|^2 (McCandlish et al.
2018, "An Empirical Model of Large-Batch Training"), read every step off our engine's gradient accumulation.

    chunks = split_chunks(members, informative, k=2)     # the step's trained groups in k chunks of whole groups
    probe = ChunkNorms(model)                            # grpo.accumulate_gradients drives it, chunk by chunk
    gauge = NoiseScale()
    row = gauge.update(probe.chunk_sq, probe.chunk_rollouts, probe.sum_sq, informative=40, rollouts=256)
    row["noise_scale_rollouts"]                          # the critical batch, in rollouts a step (smoothed)

The step's informative groups are split into k >= 2 chunks of whole groups (a group is the sampling unit: its
rollouts share one baseline, so a chunk never splits one), and each chunk's micro-batches run one after the
other. Between chunks the accumulating `.grad` is read: each chunk's own mean gradient G_j (over its informative
tokens or sequences). Chunks are independent draws of the same kind, so their pairwise dot products are unbiased
for |G|^2, and the excess of their squared norms over it is the noise of a chunk of b informative rollouts (b:
the harmonic mean of the chunk sizes):

    |G|^2     ~ (|sum_j G_j|^2 - sum_j |G_j|^2) / (k (k - 1))        (the mean of G_i . G_j over i != j)
    tr(Sigma) ~ b (mean_j |G_j|^2 - |G|^2)                          (per informative rollout)

Not McCandlish's two-batch form (|G|^2 ~ (B |G_B|^2 - b |G_b|^2) / (B - b), with G_B the whole step's mean): the
loss is a token mean, so the step's gradient weighs each group by its tokens (8x apart on the built-in tasks)
while B and b count rollouts, and tokens and gradient size go together. Checked against exact per-group
gradients (40 informative groups at the starter; the research behind issue 21), the two-batch form read 10-30x
low on steps of two groups and gave a negative |G|^2 on steps of 4-16, while this form stayed within its
resampling noise at every step size (B_simple about 660, 1,000 and over 1,500 informative rollouts in the 80%,
60% and train regimes).

Both are averaged over steps (an EMA with Adam's bias correction) before dividing: one step's estimates are
noisy, heavy-tailed and often negative. The sample is an informative rollout: a zero-advantage group adds
nothing to the gradient (with beta = 0), so it is left out of every count, whether the engine skips it or
trains it. The scale is converted to rollouts a step by the share of the step's rollouts that were informative
(EMA too): B_rollouts = B_informative / share. A step of R rollouts is at the critical batch when it holds
B_informative informative rollouts; well above it, fewer rollouts a step would reach the same loss for less
compute (step-limited); well below, denser steps learn more per step (sample-limited). sgpo/gauge.py says which
in words.

Cost: the gradients are read once per chunk (a pass over them) and two fp32 copies are kept while the step
accumulates (the gradient after the last chunk and the sum of the chunks' means: 8 bytes a parameter); the chunks' micro-batches are smaller than one length-sorted run over
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
    """Each chunk's own mean gradient, read off the accumulating .grad between chunks: its squared norm, and the
    running sum of those means (for the chunks' pairwise dot products).

    Every micro-batch's loss is divided by the whole batch's normaliser (tokens or sequences, zero-advantage
    groups included: sgpo/train/grpo.py), so a chunk's accumulated gradient is its own mean gradient (over its
    informative tokens or sequences, `own`) times own / total."""

    def __init__(self, model, total: int):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.seen: list[torch.Tensor | None] = [None] * len(self.params)  # .grad after the last chunk (fp32)
        self.sum: list[torch.Tensor | None] = [None] * len(self.params)  # sum of the chunks' own means (fp32)
        self.total = total
        self.chunk_sq: list[float] = []
        self.chunk_rollouts: list[int] = []
        self.sum_sq = math.nan

    def chunk_done(self, rollouts: int, own: int) -> None:
        """A chunk of `rollouts` informative rollouts whose mean is over `own` tokens or sequences is done."""
        scale = self.total / max(own, 1)
        parts = []  # summed on the device, read once: no host sync per parameter
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad.detach().float()
            seen, total = self.seen[i], self.sum[i]
            mean = (grad if seen is None else grad - seen) * scale
            parts.append(mean.pow(2).sum().double())
            self.seen[i] = grad.clone() if seen is None else seen.copy_(grad)
            self.sum[i] = mean if total is None else total.add_(mean)
        self.chunk_sq.append(float(torch.stack(parts).sum()) if parts else 0.0)
        self.chunk_rollouts.append(rollouts)

    def step_done(self) -> None:
        """Every chunk is done: |sum of the chunks' means|^2, and the copies are let go."""
        parts = [s.pow(2).sum().double() for s in self.sum if s is not None]
        self.sum_sq = float(torch.stack(parts).sum()) if parts else 0.0
        self.seen, self.sum = [], []


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
        self, chunk_sq: list[float], chunk_rollouts: list[int], sum_sq: float, *, informative: int, rollouts: int
    ) -> dict:
        """Fold in one step: its chunks' squared mean-gradient norms and sizes (informative rollouts), |the sum of
        the chunks' means|^2, and the step's informative and generated rollouts. Returns the step's metrics
        (METRICS, names in sgpo/vocab.py): this step's own estimates when it had two chunks, and the smoothed gauge
        once any step had (the scale is inf while the smoothed |G|^2 is not above zero: the noise still hides the
        mean gradient)."""
        if rollouts:
            self._ema(("informative", "rollouts"), (float(informative), float(rollouts)), "share")
        row: dict[str, float] = {}
        k = len(chunk_sq)
        if k >= 2 and math.isfinite(sum_sq):
            size = k / sum(1.0 / b for b in chunk_rollouts)  # harmonic mean of the chunk sizes
            row["noise_g2"] = (sum_sq - sum(chunk_sq)) / (k * (k - 1))  # the chunks' mean pairwise dot product
            row["noise_trace"] = size * (sum(chunk_sq) / k - row["noise_g2"])  # per informative rollout
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
