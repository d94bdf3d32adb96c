"""Resolving and loading a policy: the shipped starter, a local folder, or a Hugging Face id.

Only safetensors weights are loaded (pickle checkpoints can run code). A model's identity is its
path plus a hash of its weight files, so a profile can be matched to exactly the model it measured.
transformers is imported inside the functions that use it: its auto classes take seconds to import, and
every `sgpo` command loads this module.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from huggingface_hub import snapshot_download
from safetensors import SafetensorError, safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from sgpo import paths
from sgpo.errors import ModelError
from sgpo.generate import fit_prompts
from sgpo.store import default_path

STARTER_DIR = Path(__file__).resolve().parent / "starter" / "policy"  # package data: ships in the wheel
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
HF_PREFIX = "hf:"  # a hub model written as datasets are: hf:ORG/NAME[@REVISION]
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


@dataclass(frozen=True)
class ModelRef:
    spec: str  # what the user typed
    path: Path  # local folder holding config, tokenizer and safetensors
    weights_hash: str  # sha256 over the safetensors files, first 16 hex digits
    n_params: int  # unique parameters (tied weights counted once)


def check_spec(spec: str, db=None) -> str:
    """A model spec made ready for another process, without loading or downloading anything: `starter`
    (which must be there), `run:NAME[@STEP]` (a run's checkpoint, beside the store `db`: kept as written),
    an existing model folder (checked, made absolute), or an HF id like org/name (also written hf:org/name, as
    datasets are, with an optional @REVISION; kept as written)."""
    spec = str(spec).strip()
    if spec.startswith(HF_PREFIX):
        repo, _, revision = spec[len(HF_PREFIX) :].partition("@")
        if not _looks_like_hf_id(repo) or (revision == "" and spec.endswith("@")):
            raise ModelError(f"model {spec!r}: a hub model is written hf:ORG/NAME or hf:ORG/NAME@REVISION")
        return spec
    if paths.is_run_model(spec):
        check_model_dir(run_checkpoint(spec, db))
        return spec
    if spec == "starter":
        if not (STARTER_DIR / "config.json").exists():
            raise ModelError(
                f"the starter policy is missing from {STARTER_DIR}: reinstall sgpo, or train one with "
                f"`sgpo starter train --out DIR` and pass --model DIR"
            )
        return spec
    path = Path(spec).expanduser()
    if path.exists():
        check_model_dir(path)
        return str(path.resolve())
    if _looks_like_hf_id(spec):
        return spec
    raise ModelError(
        f"model {spec!r} is neither 'starter', an existing folder, nor an HF id like org/name (or hf:org/name)"
    )


def run_checkpoint(spec: str, db=None) -> Path:
    """The folder of `run:NAME[@STEP]`: that step's checkpoint of run NAME of the store `db` (default:
    $SGPO_DB, else ./runs/sgpo.db), or its latest when no step is given. A checkpoint is a model folder."""
    name, _, step = spec[len(paths.RUN_MODEL_PREFIX) :].partition("@")
    root = paths.checkpoint_root(default_path(db), name)
    steps = sorted(int(p.name.split("-")[1]) for p in root.glob("step-*") if p.name.split("-")[1].isdigit())
    if not name or not steps:
        raise ModelError(
            f"model {spec!r}: run {name!r} has no checkpoint in {root} (is it a run of this store? "
            f"`sgpo runs` lists them)"
        )
    if not step:
        latest = root / "latest"
        return root / latest.read_text().strip() if latest.exists() else root / f"step-{steps[-1]:06d}"
    if not step.isdigit() or int(step) not in steps:
        raise ModelError(
            f"model {spec!r}: run {name!r} has no checkpoint at step {step}; it keeps steps "
            f"{', '.join(map(str, steps))} (older ones are pruned)"
        )
    return root / f"step-{int(step):06d}"


def resolve_model(spec: str, db=None) -> ModelRef:
    """`starter`, `run:NAME[@STEP]`, a local folder, or an HF id (downloaded once; offline this fails with a
    clear error)."""
    resolved = check_spec(spec, db)
    if paths.is_run_model(resolved):
        path = run_checkpoint(resolved, db)
    elif resolved == "starter":
        path = STARTER_DIR
    elif resolved.startswith(HF_PREFIX):
        repo, _, revision = resolved[len(HF_PREFIX) :].partition("@")
        path = _download(repo, revision or None)
    elif Path(resolved).is_absolute():
        path = Path(resolved)
    else:
        path = _download(resolved)
    check_model_dir(path)
    check_model_config(path)
    files = sorted(path.glob("*.safetensors"))
    n_params = count_params(files)  # reads every header: a corrupt file is refused here, by name
    return ModelRef(spec=spec, path=path, weights_hash=hash_files(files), n_params=n_params)


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelError(f"model path {path} is not a folder")
    if not (path / "config.json").exists():
        raise ModelError(f"model folder {path} has no config.json")
    if not list(path.glob("*.safetensors")):
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt")]
        hint = (
            f" (found {', '.join(pickles)}: pickle weights are refused, convert them to safetensors)" if pickles else ""
        )
        raise ModelError(f"model folder {path} has no .safetensors weights{hint}")
    if not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(f"model folder {path} has no tokenizer (expected one of {', '.join(TOKENIZER_FILES)})")


def read_config(path: Path) -> dict:
    """The folder's config.json as a dict; ModelError naming the file when it is not a JSON object."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(
            f"model folder {path}: config.json is not readable JSON ({exc}): restore it from the model's source"
        ) from None
    if not isinstance(config, dict):
        raise ModelError(f"model folder {path}: config.json holds {type(config).__name__}, not an object")
    return config


def check_model_config(path: Path) -> None:
    """A config transformers can load as a causal language model, checked without loading weights, so an
    unknown architecture is refused before any store or run exists."""
    model_type = read_config(path).get("model_type")
    if not model_type:
        raise ModelError(f"model folder {path}: config.json names no model_type: it is not a transformers model")
    if model_type not in CONFIG_MAPPING_NAMES:
        raise ModelError(
            f"model folder {path}: model_type {model_type!r} is unknown to this transformers "
            f"(upgrade transformers, or check config.json)"
        )
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelError(
            f"model folder {path}: model_type {model_type!r} is not a causal language model "
            f"(AutoModelForCausalLM cannot load it): give a generative model"
        )


def context_length(path: Path) -> int | None:
    """Tokens the model attends over (prompt + completion), from config.json; None when it does not say."""
    config = read_config(path)
    for scope in (config, config.get("text_config") or {}):
        for key in CONTEXT_KEYS:
            value = scope.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def fit_frame(
    frame: pd.DataFrame, path: Path, *, max_new_tokens: int, truncate: bool
) -> tuple[pd.DataFrame, str | None]:
    """The queries (`id`, `prompt`) with prompts that fit the model's context with `max_new_tokens` after
    them: a prompt too long is refused, naming its query, unless `truncate` (--truncate-prompts), which keeps
    its end, where the question is. Returns the frame (itself when nothing was cut) and the warning that
    says how many prompts were cut (None when none was). Profiling and training both fit their data here."""
    context = context_length(path)
    if context is None:
        return frame, None
    fitted = fit_prompts(
        frame["prompt"].tolist(),
        frame["id"].tolist(),
        load_tokenizer(path),
        context=context,
        max_new_tokens=max_new_tokens,
        truncate=truncate,
    )
    if not fitted.cut:
        return frame, None
    return frame.assign(prompt=fitted.prompts), fitted.warning(context, max_new_tokens)


def hash_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        try:
            with f.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except OSError as exc:
            raise ModelError(f"model folder {f.parent}: cannot read {f.name} ({exc.strerror or exc})") from None
    return h.hexdigest()[:16]


def count_params(files: list[Path]) -> int:
    """Parameter count read from the safetensors headers, without loading the weights."""
    total = 0
    for f in files:
        try:
            with safe_open(str(f), framework="pt") as st:
                for key in st.keys():  # noqa: SIM118 (safe_open is not iterable)
                    total += math.prod(st.get_slice(key).get_shape())
        except (SafetensorError, OSError) as exc:
            raise ModelError(
                f"model folder {f.parent}: {f.name} is not a readable safetensors file ({exc}): "
                f"it is corrupt or cut short; copy or download it again"
            ) from None
    return total


def load_tokenizer(path: str | Path):
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # transformers raises OSError, ValueError, JSON errors...: one line for the user
        raise ModelError(
            f"model folder {path}: its tokenizer does not load ({type(exc).__name__}: {_first_line(exc)})"
        ) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_model(path: str | Path, dtype=None):
    check_model_dir(Path(path))
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, dtype=dtype or torch.float32)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:  # bad config or weights, not a bug of ours
        raise ModelError(
            f"model folder {path} does not load as a causal language model ({type(exc).__name__}: {_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


def _looks_like_hf_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~"))


def _download(repo_id: str, revision: str | None = None) -> Path:
    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt"]
            )
        )
    except Exception as exc:  # offline, unknown repo, auth: all end the same way for the user
        raise ModelError(
            f"could not fetch model {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}: "
            f"{_first_line(exc)}); offline, pass a local folder "
            f"with config.json, a tokenizer and .safetensors weights"
        ) from None
