"""The transformers backend: deterministic, padding-proof, stops at the end token, one record shape."""

from __future__ import annotations

import pytest

from sgpo.errors import BackendError, ConfigError
from sgpo.generate import check_sampling
from sgpo.generate import vllm as vllm_backend
from sgpo.generate.backends import make_generator
from tests.conftest import ROOT
from tests.toys import make_coin_model, make_tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["r abc=", "4821+3907=", "s 31415=", "c b abfcbbd=", "x="]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_generator("hf", make_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture(scope="module")
def coin(tmp_path_factory):
    return make_generator("hf", make_coin_model(tmp_path_factory.mktemp("coin")))


def _texts(outs):
    return [[s.text for s in g.samples] for g in outs]


def test_sampling_is_deterministic_for_a_seed(tiny):
    kw = dict(n=4, temperature=1.0, max_new_tokens=12)
    first = tiny.generate(PROMPTS, seed=7, **kw)
    assert _texts(first) == _texts(tiny.generate(PROMPTS, seed=7, **kw))
    assert _texts(first) != _texts(tiny.generate(PROMPTS, seed=8, **kw))


def test_left_padding_gives_the_same_greedy_completion_as_a_lone_prompt(tiny):
    batched = tiny.generate(PROMPTS, n=1, temperature=0, max_new_tokens=16, seed=0)
    for prompt, g in zip(PROMPTS, batched):
        alone = tiny.generate([prompt], n=1, temperature=0, max_new_tokens=16, seed=0)[0]
        assert g.prompt_ids == alone.prompt_ids
        assert g.samples[0].token_ids == alone.samples[0].token_ids


def test_generation_stops_at_the_end_token_and_drops_padding(coin):
    eos, x = coin.tokenizer.eos_token_id, coin.tokenizer.convert_tokens_to_ids("x")
    outs = coin.generate(PROMPTS, n=16, temperature=1.0, max_new_tokens=4, seed=3)
    samples = [s for g in outs for s in g.samples]
    for s in samples:
        assert s.finished == (s.token_ids[-1] == eos)
        body = s.token_ids[:-1] if s.finished else s.token_ids
        assert body == [x] * len(body)  # nothing after the end token, no padding
        assert s.text == "x" * len(body)
        assert 1 <= s.completion_tokens <= 4
    assert any(s.finished for s in samples) and not all(s.finished for s in samples)
    assert {len(s.token_ids) for s in samples} == {1, 2, 3, 4}


def test_records_hold_prompt_ids_with_bos_and_n_samples_per_prompt(tiny):
    outs = tiny.generate(PROMPTS, n=3, temperature=1.0, max_new_tokens=5, seed=0)
    assert [g.prompt for g in outs] == PROMPTS
    for g in outs:
        assert g.prompt_ids == tiny.tokenizer(g.prompt)["input_ids"]
        assert g.prompt_ids[0] == tiny.tokenizer.bos_token_id and g.prompt_tokens == len(g.prompt) + 1
        assert len(g.samples) == 3
        assert all(s.completion_tokens == len(s.token_ids) for s in g.samples)


def test_greedy_with_several_samples_repeats_the_one_completion(tiny):
    g = tiny.generate(PROMPTS[:2], n=3, temperature=0, max_new_tokens=6, seed=0)[1]
    assert len(g.samples) == 3 and len({tuple(s.token_ids) for s in g.samples}) == 1
    assert g.samples[0] is not g.samples[1]  # copies: a caller may edit one


def test_results_do_not_depend_on_the_generator_chunk_size(tmp_path):
    folder = make_tiny_model(tmp_path)
    one = make_generator("hf", folder, batch_size=2).generate(PROMPTS, n=1, temperature=0, max_new_tokens=8, seed=0)
    two = make_generator("hf", folder, batch_size=64).generate(PROMPTS, n=1, temperature=0, max_new_tokens=8, seed=0)
    assert _texts(one) == _texts(two)


@pytest.mark.parametrize(
    "n,temperature,max_new_tokens,option",
    [(0, 1.0, 8, "--samples"), (4, -0.5, 8, "--temperature"), (4, 1.0, 0, "--max-new-tokens")],
)
def test_bad_sampling_knobs_name_the_option(n, temperature, max_new_tokens, option):
    with pytest.raises(ConfigError, match=option):
        check_sampling(n, temperature, max_new_tokens)


def test_an_unknown_backend_is_refused_by_name(tmp_path):
    with pytest.raises(BackendError, match="--backend"):
        make_generator("tgi", tmp_path)


def test_missing_vllm_says_how_to_install_it(tmp_path):
    from sgpo.generate.vllm import vllm_importable

    if vllm_importable():
        pytest.skip("vLLM is importable here")
    with pytest.raises(BackendError, match=r"--backend vllm.*(sgpo\[vllm\]|setup-vllm)"):
        make_generator("vllm", make_tiny_model(tmp_path))


def test_vllm_python_prefers_the_env_override_and_never_names_this_interpreter(monkeypatch, tmp_path):
    import sys

    from sgpo.generate import vllm as vllm_backend

    monkeypatch.setattr(vllm_backend, "vllm_importable", lambda: False)
    monkeypatch.setenv("SGPO_VLLM_PYTHON", str(tmp_path / "python"))
    with pytest.raises(BackendError, match="SGPO_VLLM_PYTHON"):  # not there
        vllm_backend.vllm_python()
    (tmp_path / "python").write_text("#!/bin/sh\n")
    (tmp_path / "python").chmod(0o755)
    assert vllm_backend.vllm_python() == str(tmp_path / "python")
    monkeypatch.setenv("SGPO_VLLM_PYTHON", sys.executable)  # a venv python links to the same binary as others:
    assert vllm_backend.vllm_python() is None  # compared by path, not by link target
    monkeypatch.setattr(vllm_backend, "vllm_importable", lambda: True)
    monkeypatch.setenv("SGPO_VLLM_PYTHON", str(tmp_path / "python"))
    assert vllm_backend.vllm_python() is None  # vLLM right here: no detour


def test_missing_vllm_names_the_option_and_the_variable_in_one_line(tmp_path, monkeypatch):
    if vllm_backend.vllm_importable():
        pytest.skip("vLLM is importable here")
    monkeypatch.delenv("SGPO_VLLM_PYTHON", raising=False)
    with pytest.raises(BackendError) as caught:
        make_generator("vllm", make_tiny_model(tmp_path))
    message = str(caught.value)
    assert "--vllm-python" in message and "$SGPO_VLLM_PYTHON" in message and "\n" not in message


def test_an_installed_sgpo_has_no_checkout_fallback_for_vllm(monkeypatch, tmp_path):
    checkout = ROOT.resolve()  # tests run from the checkout
    assert checkout == vllm_backend.CHECKOUT_ROOT
    assert checkout / ".venv-vllm" / "bin" / "python" == vllm_backend.VLLM_VENV_PYTHON
    fake = tmp_path / ".venv-vllm" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(vllm_backend, "vllm_importable", lambda: False)
    monkeypatch.delenv("SGPO_VLLM_PYTHON", raising=False)
    monkeypatch.setattr(vllm_backend, "VLLM_VENV_PYTHON", fake)
    assert vllm_backend.vllm_python() == str(fake)  # a checkout's .venv-vllm, found by itself
    monkeypatch.setattr(vllm_backend, "CHECKOUT_ROOT", None)
    monkeypatch.setattr(vllm_backend, "VLLM_VENV_PYTHON", None)  # what an installed package computes
    assert vllm_backend.vllm_python() is None


def test_a_vllm_python_without_vllm_is_refused_before_any_rerun_naming_the_option_and_the_variable(
    monkeypatch, tmp_path
):
    lacking = tmp_path / "python"
    lacking.write_text("#!/bin/sh\nexit 3\n")  # runs, but finds no vllm (the probe's own exit code)
    lacking.chmod(0o755)
    monkeypatch.setattr(vllm_backend, "vllm_importable", lambda: False)
    monkeypatch.setenv("SGPO_VLLM_PYTHON", str(lacking))
    with pytest.raises(
        BackendError, match=r"^--vllm-python / \$SGPO_VLLM_PYTHON=.*python cannot import vllm"
    ) as caught:
        vllm_backend.vllm_python()
    assert "\n" not in str(caught.value)
    monkeypatch.setattr(vllm_backend, "CHECKOUT_ROOT", None)  # installed: the child needs sgpo too
    with pytest.raises(BackendError, match="cannot import vllm and sgpo"):
        vllm_backend.vllm_python()
    monkeypatch.setenv("SGPO_VLLM_PYTHON", str(tmp_path))
    with pytest.raises(BackendError, match="is not an executable interpreter"):
        vllm_backend.vllm_python()


def test_own_decoding_loop_matches_transformers_generate(tiny, coin):
    """The loop that prefills once and drops finished samples picks generate's greedy tokens, and its
    records look the same as generate's (the fallback for models without position_ids)."""

    def greedy(gen):
        return gen.generate(PROMPTS, n=2, temperature=0, max_new_tokens=12, seed=0)

    ours = greedy(tiny)
    tiny._own_loop = False
    try:
        theirs = greedy(tiny)
        sampled = coin.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=4, seed=0)
        coin._own_loop = False
        fallback = coin.generate(PROMPTS, n=4, temperature=1.0, max_new_tokens=4, seed=0)
    finally:
        tiny._own_loop = coin._own_loop = True
    assert [[(s.token_ids, s.text, s.finished) for s in g.samples] for g in ours] == [
        [(s.token_ids, s.text, s.finished) for s in g.samples] for g in theirs
    ]
    for a, b in zip(sampled, fallback):
        assert a.prompt_ids == b.prompt_ids and len(a.samples) == len(b.samples) == 4
        assert all(s.finished == (s.token_ids[-1] == coin.tokenizer.eos_token_id) for s in a.samples + b.samples)


def _batch_sizes(gen):
    """Record the (batch, length) of every forward the generator's model runs: a prefill has length > 1."""
    shapes = []
    handle = gen.model.register_forward_pre_hook(
        lambda m, args, kw: shapes.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    return shapes, handle


def test_samples_of_one_prompt_are_drawn_in_bounded_chunks(coin):
    shapes, handle = _batch_sizes(coin)
    try:
        [g] = coin.generate(["x="], n=1024, temperature=1.0, max_new_tokens=3, seed=0)
    finally:
        handle.remove()
    assert coin.max_sequences == 256 and max(b for b, _ in shapes) <= 256  # never one batch of 1024
    assert sum(length > 1 for _, length in shapes) == 4  # four chunks, each prefilled once
    assert len(g.samples) == 1024
    chunks = [[tuple(s.token_ids) for s in g.samples[i : i + 256]] for i in range(0, 1024, 256)]
    assert len(set(map(tuple, chunks))) == 4  # each chunk continues the random stream, none repeats another


def test_many_prompts_share_a_batch_only_up_to_the_sequence_bound(tmp_path):
    gen = make_generator("hf", make_coin_model(tmp_path), batch_size=64, max_sequences=12)
    shapes, handle = _batch_sizes(gen)
    try:
        outs = gen.generate(PROMPTS, n=5, temperature=1.0, max_new_tokens=3, seed=0)
    finally:
        handle.remove()
    assert [b for b, length in shapes if length > 1] == [2, 2, 1]  # 2 prompts x 5 samples fit in 12, 3 do not
    assert max(b for b, _ in shapes) <= 12
    assert [len(g.samples) for g in outs] == [5] * len(PROMPTS)


def test_chunked_sampling_is_deterministic_and_has_the_same_distribution(tmp_path):
    """The coin model stops at once with probability 1/2: chunks of 16 and one batch of 400 agree on it."""
    folder = make_coin_model(tmp_path)
    small = make_generator("hf", folder, max_sequences=16)
    whole = make_generator("hf", folder, max_sequences=400)

    def stop_rate(gen, seed):
        outs = gen.generate(PROMPTS[:2], n=400, temperature=1.0, max_new_tokens=3, seed=seed)
        return [s.token_ids for g in outs for s in g.samples], sum(
            s.completion_tokens == 1 and s.finished for g in outs for s in g.samples
        ) / 800

    first, rate_small = stop_rate(small, 5)
    assert stop_rate(small, 5)[0] == first  # same seed, same chunks, same samples
    rate_whole = stop_rate(whole, 5)[1]
    assert abs(rate_small - 0.5) < 0.06 and abs(rate_whole - 0.5) < 0.06  # 3.4 standard errors


def test_fit_prompts_refuses_a_prompt_too_long_for_the_context_naming_the_query(tiny):
    from sgpo.errors import DataError
    from sgpo.generate import fit_prompts

    prompts, ids = ["r ab=", "r " + "abcdefghij" * 3 + "="], ["short", "long"]
    with pytest.raises(
        DataError,
        match=r"query 'long': its prompt is 34 tokens.*--max-new-tokens is 8, 42 > "
        r"the model's context of 40 tokens.*--truncate-prompts",
    ):
        fit_prompts(prompts, ids, tiny.tokenizer, context=40, max_new_tokens=8)
    fitted = fit_prompts(prompts, ids, tiny.tokenizer, context=40, max_new_tokens=8, truncate=True)
    assert fitted.cut == ["long"] and fitted.prompts[0] == "r ab="
    assert fitted.prompts[1] == prompts[1][-31:]  # the END is kept: 31 characters + BOS = 32 = 40 - 8
    assert len(tiny.tokenizer(fitted.prompts[1])["input_ids"]) == 32
    assert "1 of 2 prompts" in fitted.warning(40, 8) and "'long'" in fitted.warning(40, 8)
    assert fit_prompts(prompts, ids, tiny.tokenizer, context=None, max_new_tokens=8).prompts == prompts
    with pytest.raises(ConfigError, match="--max-new-tokens 40 leaves no room"):
        fit_prompts(prompts, ids, tiny.tokenizer, context=40, max_new_tokens=40, truncate=True)


def test_a_model_folder_that_does_not_load_is_a_model_error_naming_it(tmp_path):
    import json

    from sgpo.errors import ModelError

    folder = make_tiny_model(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "nosuchmodel"}))
    with pytest.raises(ModelError, match=f"model folder {folder}"):
        make_generator("hf", folder)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text("{broken")
    with pytest.raises(ModelError, match="tokenizer does not load"):
        make_generator("hf", folder)
