"""The decoding loop and batch invariance on a tiny random Llama (no files): answers decoded in a
batch, prefilled in packs, with rows joining late and ending early, get bit for bit the logits
they get alone; the row-grouped linear layers (also in prefill chunks), the row-by-row attention
and the prompt-by-prompt attention of a pack each give a row the bits it gets alone."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from app import decoding
from app.batch_invariance import _row_attention, make_batch_invariant, prefilling, row_group
from app.decoding import Decoder, decode
from app.inference import Answer, Student
from tests.support.decoding import record_logits
from tests.unit.test_batching import CharTokenizer

PROMPTS = [("a short one", 9), ("a much longer prompt than the others", 4), ("mid length", 12), ("x", 7),
           ("another prompt here", 10)]


def tiny_model(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval()


def student(prepared: bool) -> Student:
    model = tiny_model()
    rows = 8 if prepared and make_batch_invariant(model, 8) else 1
    return Student(model=model, tokenizer=CharTokenizer(), eos_ids=[0], context=256, batch_rows=rows)


def answer(s: Student, text: str, tokens: int) -> Answer:
    return Answer(s, [{"role": "user", "content": text}], max_tokens=tokens)


@pytest.fixture
def logits(monkeypatch) -> dict[tuple[int, ...], list]:
    """Every row of logits a token was chosen from, by answer (its prompt's ids)."""
    return record_logits(monkeypatch)


def batched(s: Student) -> list[Answer]:
    """Three answers start together, two join two steps later (each group prefilled together);
    each ends at its own max_tokens."""
    answers = [answer(s, text, tokens) for text, tokens in PROMPTS]
    decoder = Decoder(s)
    decoder.add_all(answers[:3])
    decoder.step()
    decoder.step()
    decoder.add_all(answers[3:])
    sizes = []
    while decoder.answers:
        sizes.append(len(decoder.answers))
        decoder.step()
    assert max(sizes) == 5 and sizes[-1] < 5, "all five decoded together, and rows ended on their own"
    return answers


@pytest.mark.parametrize("prefill_tokens", [decoding.PREFILL_TOKENS, 30], ids=["one pack", "packs of 30 tokens"])
def test_a_batch_gives_each_row_the_logits_it_gets_alone(logits, monkeypatch, prefill_tokens):
    monkeypatch.setattr(decoding, "PREFILL_TOKENS", prefill_tokens)
    s = student(prepared=True)
    assert s.batch_rows == 8
    alone = []
    for text, tokens in PROMPTS:
        a = answer(s, text, tokens)
        decode(s, a)
        alone.append(a.completion())
    alone_logits = dict(logits)
    logits.clear()
    together = [a.completion() for a in batched(s)]
    assert together == alone
    assert [c.completion_tokens for c in together] == [tokens for _, tokens in PROMPTS]
    for prompt, rows in alone_logits.items():
        assert all(a.equal(b) for a, b in zip(rows, logits[prompt], strict=True))


def test_without_the_row_attention_a_batch_is_still_right_up_to_rounding(logits):
    s = student(prepared=False)
    for text, tokens in PROMPTS:
        decode(s, answer(s, text, tokens))
    alone_logits = dict(logits)
    logits.clear()
    batched(s)
    for prompt, rows in alone_logits.items():
        for a, b in zip(rows, logits[prompt], strict=True):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_grouped_linear_layers_give_a_row_the_same_bits_at_any_row_count():
    model = tiny_model()
    group = make_batch_invariant(model, 16)
    assert group is not None and group == row_group(tiny_model(), 16)
    x = torch.randn(16, 64)
    layer = model.model.layers[0].mlp.up_proj
    with torch.inference_mode():
        full = layer(x)
        assert all(layer(x[:rows]).equal(full[:rows]) for rows in range(1, 17))
        assert layer(x[None, 3:4]).equal(full[None, 3:4]), "shapes with a batch axis too"


def test_while_prefilling_a_row_gets_the_same_bits_wherever_it_sits():
    model = tiny_model()
    make_batch_invariant(model, 8)
    chunk = model.prefill_rows
    if chunk is None:
        pytest.skip("this CPU's BLAS gives a row other bits at some place in every chunk size tried")
    x = torch.randn(2 * chunk + 10, 64)
    prompt = x[:5]
    layer = model.model.layers[0].mlp.up_proj
    with torch.inference_mode(), prefilling():
        alone = layer(prompt)
        for before in (0, 3, chunk - 2, chunk + 7):  # rows of other prompts packed before it
            packed = layer(torch.cat([x[10:10 + before], prompt, x[5:10]])[None])[0]
            assert packed[before:before + 5].equal(alone), before


def test_packed_prompts_attend_each_over_its_own_tokens_as_alone():
    module = tiny_model().model.layers[0].self_attn
    lengths = [5, 9, 2]
    q = torch.randn(1, 4, sum(lengths), 16)
    k, v = torch.randn(1, 2, sum(lengths), 16), torch.randn(1, 2, sum(lengths), 16)
    together, _ = _row_attention(module, q, k, v, None, segments=lengths, scaling=0.25)
    start = 0
    for n in lengths:
        part = slice(start, start + n)
        alone, _ = _row_attention(module, q[:, :, part], k[:, :, part], v[:, :, part], None, segments=[n],
                                  scaling=0.25)
        assert together[:, part].equal(alone)
        start += n


def test_row_attention_attends_each_row_over_its_own_keys_as_alone():
    module = tiny_model().model.layers[0].self_attn
    lengths = [5, 9, 2]
    longest = max(lengths)
    q = torch.randn(3, 4, 1, 16)
    keys = [torch.randn(1, 2, n, 16) for n in lengths]
    values = [torch.randn(1, 2, n, 16) for n in lengths]
    pad = [longest - n for n in lengths]
    k = torch.cat([torch.nn.functional.pad(t, (0, 0, p, 0)) for t, p in zip(keys, pad, strict=True)])
    v = torch.cat([torch.nn.functional.pad(t, (0, 0, p, 0)) for t, p in zip(values, pad, strict=True)])
    together, _ = _row_attention(module, q, k, v, None, row_starts=pad, scaling=0.25)
    for i in range(3):
        alone, _ = _row_attention(module, q[i:i + 1], keys[i], values[i], None, row_starts=[0], scaling=0.25)
        assert together[i:i + 1].equal(alone)


def test_a_batch_cache_writes_each_step_in_place_and_keeps_the_same_values(monkeypatch):
    """The batch's cache layers grow into spare columns (no copy of the whole cache per token),
    copy into new buffers when full or after a splice, and hold what a plain cache would."""
    monkeypatch.setattr(decoding, "SPARE_COLUMNS", 3)
    s = student(prepared=True)
    decoder = Decoder(s)
    decoder.add_all([answer(s, "a short one", 12), answer(s, "mid length", 12)])
    layer = decoder.cache.layers[0]
    plain = torch.cat([layer.keys, torch.zeros(2, layer.keys.shape[1], 0, layer.keys.shape[3])], -2).clone()
    places = []
    for _ in range(5):
        decoder.step()
        places.append(layer.keys.data_ptr())
        assert torch.equal(layer.keys[:, :, :plain.shape[2]], plain), "earlier columns kept as they were"
    # The first step copies the spliced cache into a buffer with 3 spare columns; the next three
    # steps write into it; the fifth is past its room and copies once more.
    assert len(set(places[:4])) == 1 and places[4] != places[3]
    decoder.add_all([answer(s, "x", 12)])
    assert decoder.cache.layers[0].keys.shape[0] == 3
    decoder.step()
    assert decoder.cache.layers[0].keys.shape[0] == 3, "a spliced row joins the buffers at the next step"
