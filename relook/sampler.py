"""Sampling turns fast on a CPU: what `model.generate` leaves on the table when a batch of pages is written.

Decoding a 135M model on 2 cores is bound by reading memory: every step reads all the weights (540 MB in float32)
and every live sequence's KV cache, whatever the batch size. So the tokens per second come from the batch: more
sequences per step share one read of the weights. `model.generate` wastes that batch in three ways, which this
sampler removes (benchmarks/gen_bench.py measures each, docs/gen_bench.json):

* a finished sequence stays in the batch, padding until the longest one is done: here it leaves the batch (its
  rows of the KV cache are dropped), so a step costs what the live sequences cost;
* the KV cache grows by concatenation (a copy of the whole cache at every step) or, static, is read at its full
  length: here it is preallocated and read up to the current length;
* the LoRA adapter (and trainable tag rows) run unmerged at every layer: here a frozen copy of the policy with the
  adapter merged samples, re-copied whenever the trained weights change (checked at every call: each GRPO step's
  update is in the next step's samples).

What contexts share is computed once: the system prompt every context starts with, and the whole context of a GRPO
group (one prompt repeated num_generations times). The sampling distribution is generate's: the same logits
warpers (temperature, then top-p) on the same logits, a draw from the same categorical distribution, the same stop
tokens; the log-probabilities returned are those of the processed logits,
as `Policy.generate` returns them. The loss never uses them on this path: TRL recomputes every log-probability
with the model it trains.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.generation.logits_process import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper


class _Layer(DynamicLayer):
    """One layer's KV cache in a buffer with room for every sequence to finish: written in place, read up to the
    current length, shrunk along the batch when sequences finish. A row's padding slots are masked."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states, value_states):
        self.dtype, self.device = key_states.dtype, key_states.device
        b, h, _, d = key_states.shape
        self._k = key_states.new_empty((b, h, self.capacity, d))
        self._v = value_states.new_empty((b, h, self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def _views(self):
        self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = key_states.shape[-2]
        self._k[:, :, self.length:self.length + n] = key_states
        self._v[:, :, self.length:self.length + n] = value_states
        self.length += n
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._k, self._v = self._k.index_select(0, indices), self._v.index_select(0, indices)
        self._views()


def _warpers(temperature: float, top_p: float, greedy: bool) -> LogitsProcessorList:
    """generate's warpers for do_sample with top_k=0, in generate's order."""
    if greedy:
        return LogitsProcessorList()
    procs = [TemperatureLogitsWarper(temperature)] if temperature != 1.0 else []
    return LogitsProcessorList(procs + ([TopPLogitsWarper(top_p)] if top_p < 1.0 else []))


def _common_prefix(seqs) -> int:
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n


def _draw(probs: torch.Tensor) -> torch.Tensor:
    """One token per row from `probs` by inverting the cumulative distribution at a uniform draw: the same
    categorical distribution torch.multinomial samples, but one random number per row instead of an exponential per
    vocabulary entry (~100 ms a step for 64 x 49k on 2 cores, a fifth of the step)."""
    cdf = probs.cumsum(-1)
    u = torch.rand((probs.shape[0], 1), device=probs.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)


class _Batch:
    """The live sequences of a sampling call: their KV cache, attention mask over the slots, last position, which
    context each row answers, and the logits of each row's next token."""

    def __init__(self, cache, mask, last, rows, logits):
        self.cache, self.mask, self.last, self.rows, self.logits = cache, mask, last, rows, logits

    @property
    def length(self) -> int:
        return self.cache.layers[0].length

    @classmethod
    def prefill(cls, model, contexts: Sequence[Sequence[int]], rows: list[int], max_new_tokens: int, pad_id: int):
        """Prefill `contexts` (rows `rows` of the call). What they share is computed once: the prefix every one
        starts with (the system prompt) in slots [0, p); each distinct context's rest left-padded into [p, width),
        positions counted from p; copies of one context (a GRPO group) share a row until the first draw."""
        device = next(model.parameters()).device
        uniq = list(dict.fromkeys(tuple(c) for c in contexts))
        p = min(_common_prefix(uniq), min(len(c) for c in uniq) - 1)  # every row keeps >= 1 token of its own
        rest = [c[p:] for c in uniq]
        width = p + max(len(r) for r in rest)
        cache = DynamicCache(config=model.config)
        cache.layers = [_Layer(width + max_new_tokens) for _ in range(model.config.num_hidden_layers)]
        mask = torch.zeros((len(uniq), width + max_new_tokens), dtype=torch.long)
        mask[:, :p] = 1
        if p:
            model(input_ids=torch.tensor([uniq[0][:p]], device=device), past_key_values=cache, use_cache=True,
                  logits_to_keep=1)
            cache.batch_select_indices(torch.zeros(len(uniq), dtype=torch.long, device=device))
        ids = torch.full((len(uniq), width - p), pad_id, dtype=torch.long)
        for i, r in enumerate(rest):
            ids[i, width - p - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):width] = 1
        pos = p + (mask[:, p:width].cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids.to(device), attention_mask=mask[:, :width].to(device), position_ids=pos.to(device),
                    past_key_values=cache, use_cache=True, logits_to_keep=1)
        which = {c: i for i, c in enumerate(uniq)}
        expand = torch.tensor([which[tuple(c)] for c in contexts], dtype=torch.long, device=device)
        if len(uniq) < len(contexts):
            cache.batch_select_indices(expand)
        return cls(cache, mask.to(device)[expand], pos.to(device)[expand, -1],
                   torch.tensor(rows, dtype=torch.long, device=device), out.logits[:, -1].float()[expand])

    def keep(self, idx: torch.Tensor) -> None:
        self.cache.batch_select_indices(idx)
        self.mask, self.last, self.rows, self.logits = self.mask[idx], self.last[idx], self.rows[idx], self.logits[idx]

    def advance(self, model, tokens: torch.Tensor) -> None:
        """Feed each row its drawn token; the logits of the next one come back."""
        n = self.length
        self.mask[:, n] = 1
        self.last = self.last + 1
        out = model(input_ids=tokens[:, None], attention_mask=self.mask[:, :n + 1], position_ids=self.last[:, None],
                    past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        self.logits = out.logits[:, -1].float()


def batches(contexts: Sequence[Sequence[int]], max_new_tokens: int, max_batch: int = 64,
            max_batch_tokens: int = 1 << 16) -> list[list[int]]:
    """Indices of `contexts` in batches, shortest first (less padding): at most max_batch sequences and
    max_batch_tokens cache slots (sequences x (context + new tokens)) each."""
    out, cur, width = [], [], 0
    for i in sorted(range(len(contexts)), key=lambda i: (len(contexts[i]), tuple(contexts[i]))):
        w = max(width, len(contexts[i]))
        if cur and (len(cur) >= max_batch or (len(cur) + 1) * (w + max_new_tokens) > max_batch_tokens):
            out.append(cur)
            cur, w = [], len(contexts[i])
        cur.append(i)
        width = w
    return out + ([cur] if cur else [])


@torch.no_grad()
def sample(model, contexts: Sequence[Sequence[int]], max_new_tokens: int, stop_ids: Sequence[int], pad_id: int,
           temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False, max_batch: int = 64,
           max_batch_tokens: int = 1 << 16) -> list[tuple[list[int], list[float]]]:
    """(ids, logprobs) of one continuation per context, each ending at its first stop token or after
    max_new_tokens; a sequence leaves its batch when it stops. (Waiting contexts joining a batch as it empties was
    tried: with one slot clock per batch they attend over the older rows' slots, and it measured no faster.)"""
    warp = _warpers(temperature, top_p, greedy)
    toks: list[list[int]] = [[] for _ in contexts]
    lps: list[list[float]] = [[] for _ in contexts]
    for idx in batches(contexts, max_new_tokens, max_batch, max_batch_tokens):
        batch = _Batch.prefill(model, [contexts[i] for i in idx], idx, max_new_tokens, pad_id)
        stop = torch.tensor(sorted(set(stop_ids)), dtype=torch.long, device=batch.logits.device)
        for step in range(max_new_tokens):
            logp = torch.log_softmax(warp(None, batch.logits), dim=-1)
            nxt = logp.argmax(-1) if greedy else _draw(logp.exp())
            for r, t, lp in zip(batch.rows.tolist(), nxt.tolist(), logp.gather(1, nxt[:, None]).squeeze(1).tolist()):
                toks[r].append(t)
                lps[r].append(lp)
            keep = (~torch.isin(nxt, stop)).nonzero().squeeze(1)
            if step == max_new_tokens - 1 or keep.numel() == 0:
                break
            if keep.numel() < len(batch.rows):  # finished sequences leave the batch
                batch.keep(keep)
                nxt = nxt[keep]
            batch.advance(model, nxt)
    return list(zip(toks, lps))


def _weights_version(model) -> tuple:
    """Changes whenever a trainable weight is written in place (an optimizer step, a loaded state dict)."""
    return (id(model), sum(p._version for p in model.parameters() if p.requires_grad))


@dataclass
class Sampler:
    """Samples with a frozen copy of `model`, adapter merged; re-copied when the trained weights change.
    `max_batch_tokens` caps sequences x (context + new tokens) per batch: ~46 KB of KV cache per token for
    SmolLM2-135M in float32, so the default keeps a batch's cache near 3 GB."""
    max_batch: int = 64
    max_batch_tokens: int = 65536

    def __post_init__(self):
        self._copy = None
        self._version = None

    def frozen(self, model):
        """The sampling copy of `model`, in sync with its current weights."""
        v = _weights_version(model)
        if self._copy is None or v != self._version:
            self._copy = None  # free the old copy before making the new one
            dup = copy.deepcopy(model)
            if hasattr(dup, "merge_and_unload"):  # peft: LoRA and trainable tag rows written into the weights
                dup = dup.merge_and_unload()
            dup.eval().requires_grad_(False)
            self._copy, self._version = dup, v
        return self._copy

    def generate(self, model, contexts, max_new_tokens: int, stop_ids, pad_id: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> list[tuple[list[int], list[float]]]:
        return sample(self.frozen(model), contexts, max_new_tokens, stop_ids, pad_id, temperature, top_p, greedy,
                      self.max_batch, self.max_batch_tokens)
