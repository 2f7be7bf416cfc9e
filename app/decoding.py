"""The one loop that runs a student: answers decoded together, step by step, each ending on its own.

Answers that arrive together have their prompts prefilled in one forward call, packed one after
another (each with its own positions, attending only to its own tokens: `segments`), at most
`PREFILL_TOKENS` tokens a call; each one's first token is chosen and its KV cache spliced into the
batch's: the caches are left padded to one length, a 2D attention mask hides the padding and each
row gets its own position ids. Every step then feeds each row its last token in one forward call,
chooses each row's next token with that row's own options (greedy, or temperature and top-p
sampling; a tool-calling answer only among the tokens its call grammar allows), and drops the
rows that ended, trimming padding no row needs any more. An answer may join between any two
steps.

With a student prepared by `app.batch_invariance` a row's logits are bit for bit those it would
get alone (a prompt alone is a pack of one), so a greedy answer does not depend on its batch. A
student that is not prepared (the stages') prefills each prompt on its own, as a plain forward.
Imports torch: import it only with a student (`app.inference.generate` and the serving batcher
do, on first use).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from app.answer_shapes.call_grammar import Prefix
from app.batch_invariance import ATTENTION, prefilling
from app.inference import Answer, Student

#: Most prompt tokens prefilled in one forward call; more are split over several.
PREFILL_TOKENS = 4096
#: Spare token columns a batch's cache keeps past its length, so most steps write in place.
SPARE_COLUMNS = 64


def spliceable(model: Any) -> bool:
    """Whether the model's KV cache is plain per-token keys and values (no sliding window, no
    recurrent state), which rows can be padded, stacked and dropped in."""
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


class Decoder:
    """Answers being decoded together by one student, at most `student.batch_rows` of them.
    Not thread safe: one thread drives it."""

    def __init__(self, student: Student) -> None:
        self.student = student
        self.model = student.model
        self.answers: list[Answer] = []
        self.starts: list[int] = []  # each row's first cache position that is no padding
        self.cache: Any = None
        # Only the row-by-row attention takes the rows' starts; any other attends through the mask.
        self.row_starts = self.model.config._attn_implementation == ATTENTION
        # Prompts are packed into one prefill only where the prepared model found a chunk size that
        # keeps each the same as alone (`app.batch_invariance`).
        self.packs = self.row_starts and bool(getattr(self.model, "prefill_rows", None))

    def add(self, answer: Answer) -> bool:
        """Prefill `answer`'s prompt and choose its first token; unless that ended it (True), it
        joins the batch for the next `step`."""
        self.add_all([answer])
        return answer not in self.answers

    @torch.inference_mode()
    def add_all(self, answers: list[Answer]) -> None:
        """Prefill these answers' prompts and choose each one's first token; those it did not end
        join the batch for the next `step`. A failed forward call raises before any answer of its
        pack is touched (those of earlier packs stay added)."""
        waiting = []
        for answer in answers:
            if answer.is_cancelled():
                answer.end()
            else:
                waiting.append(answer)
        if not self.packs:  # each prompt its own forward call
            for answer in waiting:
                self._prefill([answer])
            return
        pack: list[Answer] = []
        tokens = 0
        for answer in waiting:
            if pack and tokens + len(answer.prompt) > PREFILL_TOKENS:
                self._prefill(pack)
                pack, tokens = [], 0
            pack.append(answer)
            tokens += len(answer.prompt)
        if pack:
            self._prefill(pack)

    def _prefill(self, pack: list[Answer]) -> None:
        """One forward call over the prompts of `pack`, one after another; each answer's first
        token chosen and, unless that ended it, its cache spliced in."""
        device = self.model.device
        lengths = [len(answer.prompt) for answer in pack]
        ids = torch.tensor([[token for answer in pack for token in answer.prompt]], device=device)
        cache = DynamicCache(config=self.model.config)
        if self.packs:
            positions = torch.tensor([[p for n in lengths for p in range(n)]], device=device)
            ends = torch.tensor(lengths, device=device).cumsum(0)
            with prefilling():
                out = self.model(input_ids=ids, position_ids=positions, cache=cache, use_cache=True,
                                 logits_to_keep=ends - 1, segments=lengths)
        else:
            out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        ended = _choose(out.logits[0], pack)
        offset = 0
        for answer, length in zip(pack, lengths, strict=True):
            if answer not in ended:
                rows = [(layer.keys[:, :, offset:offset + length], layer.values[:, :, offset:offset + length])
                        for layer in out.cache.layers]
                self._splice(rows, length, answer)
            offset += length

    @torch.inference_mode()
    def step(self) -> list[Answer]:
        """Decode the next token of every answer in the batch; returns those it ended, which left it."""
        device = self.model.device
        length = self.cache.get_seq_length()
        tokens = torch.tensor([[answer.ids[-1]] for answer in self.answers], device=device)
        positions = torch.tensor([[length - start] for start in self.starts], device=device)
        starts = torch.tensor(self.starts, device=device)
        mask = (torch.arange(length + 1, device=device)[None, :] >= starts[:, None]).long()
        extra = {"row_starts": self.starts} if self.row_starts else {}
        out = self.model(input_ids=tokens, attention_mask=mask, position_ids=positions, cache=self.cache,
                         use_cache=True, **extra)
        ended = _choose(out.logits[:, -1], self.answers)
        if ended:
            self._keep([i for i, answer in enumerate(self.answers) if answer not in ended])
        return ended

    def clear(self) -> list[Answer]:
        """Drop every answer (after a failed step); returns them."""
        answers, self.answers, self.starts, self.cache = self.answers, [], [], None
        return answers

    def _splice(self, rows: list[tuple[torch.Tensor, torch.Tensor]], length: int, answer: Answer) -> None:
        """Add a prefilled row (each layer's keys and values): left pad the batch's cache or the
        row's to the longer of them."""
        self.answers.append(answer)
        if self.cache is None:
            self.cache, self.starts = DynamicCache(config=self.model.config), [0]
            for layer, (keys, values) in zip(self.cache.layers, rows, strict=True):
                layer.lazy_initialization(keys, values)
                layer.keys, layer.values = keys.clone(), values.clone()
                layer.__class__ = _GrowingLayer
            return
        old = self.cache.get_seq_length()
        longest = max(old, length)
        for mine, (keys, values) in zip(self.cache.layers, rows, strict=True):
            mine.keys = torch.cat([_pad_left(mine.keys, longest), _pad_left(keys, longest)])
            mine.values = torch.cat([_pad_left(mine.values, longest), _pad_left(values, longest)])
        self.starts = [start + longest - old for start in self.starts] + [longest - length]

    def _keep(self, rows: list[int]) -> None:
        """Keep only these rows, and no padding column that every one of them has."""
        self.answers = [self.answers[i] for i in rows]
        if not rows:
            self.cache, self.starts = None, []
            return
        trim = min(self.starts[i] for i in rows)
        self.starts = [self.starts[i] - trim for i in rows]
        index = torch.tensor(rows, device=self.model.device)
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, trim:]
            layer.values = layer.values.index_select(0, index)[:, :, trim:]


class _GrowingLayer(DynamicLayer):
    """A cache layer whose keys and values are views of buffers with spare columns: a decoding step
    writes its token's column in place, where `DynamicLayer` copies the whole batch's cache
    (`torch.cat`) for every token. Keys or values set from outside (a splice, a trim) are copied
    into new buffers at the next update. Set as the class of the batch cache's layers."""

    _buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.keys, self.values
        if keys is None or values is None:  # not spliced in yet: nothing to grow
            return super().update(key_states, value_states, *args, **kwargs)
        length, new = keys.shape[-2], key_states.shape[-2]
        buffers = self._buffers
        if buffers is None or not _views_of(keys, buffers[0]) or not _views_of(values, buffers[1]) \
                or length + new > buffers[0].shape[-2]:
            buffers = self._buffers = (_with_spare(keys, length + new), _with_spare(values, length + new))
        buffers[0][:, :, length:length + new] = key_states
        buffers[1][:, :, length:length + new] = value_states
        self.keys, self.values = buffers[0][:, :, :length + new], buffers[1][:, :, :length + new]
        return self.keys, self.values


def _views_of(states: torch.Tensor, buffer: torch.Tensor) -> bool:
    """Whether `states` is the leading columns of `buffer` (what `_GrowingLayer.update` left)."""
    return (states.data_ptr() == buffer.data_ptr() and states.stride() == buffer.stride()
            and states.shape[:2] == buffer.shape[:2])


def _with_spare(states: torch.Tensor, needed: int) -> torch.Tensor:
    """A buffer holding `states` in its leading columns, with room for `needed` + spare columns."""
    batch, heads, length, width = states.shape
    buffer = states.new_empty(batch, heads, needed + SPARE_COLUMNS, width)
    buffer[:, :, :length] = states
    return buffer


def decode(student: Student, answer: Answer) -> None:
    """Decode one answer to its end, alone (a batch of one)."""
    decoder = Decoder(student)
    if not decoder.add(answer):
        while decoder.answers:
            decoder.step()


def _pad_left(states: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - states.shape[-2]
    return torch.nn.functional.pad(states, (0, 0, missing, 0)) if missing else states


def _choose(logits: torch.Tensor, answers: list[Answer]) -> list[Answer]:
    """Choose each answer's next token from its row of `logits` and hand it on; returns the
    answers that ended."""
    logits = logits.float()
    greedy = logits.argmax(-1).tolist()
    ended = []
    for row, answer in enumerate(answers):
        if answer.grammar is not None:
            token = _allowed(logits[row], answer)
        elif answer.temperature <= 0:
            token = greedy[row]
        else:
            token = _sample(logits[row], answer.temperature, answer.top_p)
        if answer.add(token):
            ended.append(answer)
    return ended


#: Under a grammar, how many of the likeliest tokens are tried before the whole vocabulary is.
GRAMMAR_CANDIDATES = 64


def _allowed(logits: torch.Tensor, answer: Answer) -> int:
    """The answer's next token among those its grammar allows: the likeliest (greedy) or one
    drawn as `_sample` draws, from the allowed ones among the `GRAMMAR_CANDIDATES` likeliest.
    Most steps try one or two tokens; only when none of the likeliest is allowed are the rest
    tried, likeliest first, among those whose first character can fit (`_fitting`)."""
    top = torch.topk(logits, min(GRAMMAR_CANDIDATES, logits.shape[-1])).indices.tolist()
    if answer.temperature <= 0:
        for token in top:
            if answer.allows(token):
                return int(token)
    else:
        allowed = [t for t in top if answer.allows(t)]
        if allowed:
            keep = torch.full_like(logits, float("-inf"))
            keep[allowed] = logits[allowed]
            return _sample(keep, answer.temperature, answer.top_p)
    tried = set(top)
    for token in _fitting(answer, logits):
        if token not in tried and answer.allows(token):
            return int(token)
    # Unreachable with a vocabulary that spells every character; end rather than break the grammar.
    return next(iter(answer.eos))


#: Each tokenizer's tokens grouped by the first character of their text (kept with the tokenizer).
_FIRST_CHARACTERS: dict[int, tuple[Any, dict[str, list[int]]]] = {}


def _fitting(answer: Answer, logits: torch.Tensor) -> list[int]:
    """The tokens that may fit the grammar, likeliest first: every token but those whose first
    character already breaks it (alone, or after the space a SentencePiece token's text may
    start with in context). Checking one character per group, not every token, keeps a step
    that needs an unlikely token (a `{` the untuned student would never write) to milliseconds."""
    tokenizer = answer.tokenizer
    cached = _FIRST_CHARACTERS.get(id(tokenizer))
    if cached is None or cached[0] is not tokenizer:
        groups: dict[str, list[int]] = {}
        for token in range(logits.shape[-1]):
            piece = str(tokenizer.decode([token], skip_special_tokens=True, clean_up_tokenization_spaces=False))
            groups.setdefault(piece[:1], []).append(token)
        cached = _FIRST_CHARACTERS[id(tokenizer)] = (tokenizer, groups)
    grammar, text = answer.grammar, answer.decoded()
    assert grammar is not None
    kept = [token for first, tokens in cached[1].items()
            if first in ("", "\ufffd") or grammar.check(text + first) is not Prefix.INVALID
            or grammar.check(text + " " + first) is not Prefix.INVALID
            for token in tokens]
    kept += sorted(set(answer.eos) - set(kept))
    ids = torch.tensor(kept)
    return ids[torch.argsort(logits[ids], descending=True)].tolist()


def _sample(logits: torch.Tensor, temperature: float, top_p: float) -> int:
    """A token drawn from `logits` at `temperature`, from the smallest set of most likely tokens
    whose probabilities reach `top_p` (transformers' temperature and top-p warpers)."""
    scores = logits / temperature
    if top_p < 1.0:
        ordered, order = torch.sort(scores)
        drop = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
        drop[-1] = False  # the most likely token always stays
        scores = scores.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return int(torch.multinomial(scores.softmax(-1), 1))
