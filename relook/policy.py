"""The policy: a causal LM that writes pages in the ReLook turn format.

The embedded default is a tiny Llama-family model with a byte-level BPE tokenizer, both built here and
warm-started on synthetic demonstrations (relook.warmstart). The same class loads any Hugging Face checkpoint by
path or id (`from_pretrained`, e.g. Qwen2.5-7B-Instruct), optionally with a peft LoRA adapter.

Turn format (the tags are special tokens):
    <|user|>{task}<|assistant|>Plan: ...\n```html\n...\n```\n<get_feedback>
    <mllm_feedback>{critic feedback}</mllm_feedback>Plan: ...\n```html\n...\n```\n<|eos|>
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch

from relook.reward import FEEDBACK_CLOSE, FEEDBACK_OPEN, GET_FEEDBACK

PAD, EOS, USER, ASSISTANT = "<|pad|>", "<|eos|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, EOS, USER, ASSISTANT, GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE]
CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}" + USER + "{{ m['content'] }}{% endif %}"
                 "{% endfor %}{% if add_generation_prompt %}" + ASSISTANT + "{% endif %}")
HTML_SPLIT = (r"</?[a-zA-Z][a-zA-Z0-9]*>?| ?[a-zA-Z][a-zA-Z-]*(?:=\"|:)|#[0-9a-fA-F]{3,8}| ?[A-Za-z]+"
              r"| ?\d+(?:px|ms|s|%)?|\s+|[^A-Za-z0-9\s]+")
# What the environment says when there is no critic (the self-edit inference mode).
SELF_EDIT_FEEDBACK = "No critic is available. Compare your page with the task and fix anything missing or wrong."


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
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------------------- generation
@dataclass
class Sample:
    """One generated turn: token ids (ending at the stop token if one was produced), their log-probabilities
    under the sampling distribution, and the log-probability of EOS at the last position (so the environment can
    close a trajectory there with a correctly-scored EOS)."""
    ids: list[int]
    logprobs: list[float]
    eos_logprob: float
    stopped: str          # "feedback" (<get_feedback>), "eos", or "length"
    text: str


class Policy:
    def __init__(self, model, tokenizer, device: str = "auto"):
        self.model = model
        self.tokenizer = tokenizer
        self.device = pick_device(device)
        self.model.to(self.device)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:  # real checkpoints (Llama) may lack one
            tokenizer.pad_token = tokenizer.eos_token
        self.eos_id = tokenizer.eos_token_id
        ids = tokenizer.convert_tokens_to_ids([GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE])
        unk = tokenizer.unk_token_id
        if any(i is None or (unk is not None and i == unk) for i in ids):
            raise ValueError("the tokenizer lacks the ReLook turn tags; load it through Policy.from_pretrained, "
                             "which adds them")
        self.get_feedback_id, self.fb_open_id, self.fb_close_id = ids
        # a preallocated KV cache: no per-token concatenation, ~2x faster sampling on CPU
        self.cache_implementation = "static"
        self.vllm = None  # TRL's VLLMGeneration when training with use_vllm (set by the rollout)

    # -- loading / saving
    @classmethod
    def from_pretrained(cls, path: str, *, device: str = "auto", dtype: str = "float32", lora: dict | None = None,
                        adapter: str | None = None) -> "Policy":
        """Any causal LM checkpoint (local dir or hub id when a hub is reachable). Missing turn tags are added as
        special tokens (embeddings resized). `lora` (peft LoraConfig kwargs) wraps a fresh adapter; `adapter`
        loads a saved one."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
        missing = [t for t in (GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE) if t not in tok.get_vocab()]
        if missing:
            tok.add_tokens(missing, special_tokens=True)
        torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
        if missing:
            model.resize_token_embeddings(len(tok))
        if getattr(tok, "chat_template", None) is None:
            tok.chat_template = CHAT_TEMPLATE
        if adapter:
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, adapter, is_trainable=True)
        elif lora:
            from peft import LoraConfig, get_peft_model
            model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora))
        return cls(model, tok, device)

    def save_pretrained(self, path: str | Path) -> Path:
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(p)
        self.tokenizer.save_pretrained(p)
        return p

    # -- text <-> ids
    def prompt_ids(self, task_prompt: str) -> list[int]:
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": task_prompt}], tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def feedback_ids(self, feedback: str, max_tokens: int = 96) -> list[int]:
        """<mllm_feedback> ... </mllm_feedback>, the body cut to max_tokens (environment tokens)."""
        body = self.tokenizer(feedback, add_special_tokens=False)["input_ids"][:max_tokens]
        return [self.fb_open_id] + body + [self.fb_close_id]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

    def turn_text(self, ids: Sequence[int]) -> str:
        """A turn's text for the renderer/critic: decoded, EOS and pad removed (turn tags kept)."""
        ids = [i for i in ids if i not in (self.eos_id, self.tokenizer.pad_token_id)]
        return self.decode(ids)

    # -- sampling
    @torch.no_grad()
    def generate(self, contexts: Sequence[Sequence[int]], max_new_tokens: int = 400, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False, batch_size: int = 32) -> list[Sample]:
        """Sample one turn for each context (batched, left-padded). A turn stops at <get_feedback> or EOS.
        temperature 0 means greedy."""
        greedy = greedy or temperature == 0
        if self.vllm is not None and not greedy:
            return self._generate_vllm(contexts, max_new_tokens)
        out: list[Sample] = []
        was_training = self.model.training  # TRL reads model.training to tell train from eval steps
        self.model.eval()
        try:
            for start in range(0, len(contexts), batch_size):
                out.extend(self._generate_batch(contexts[start:start + batch_size], max_new_tokens, temperature,
                                                top_p, greedy))
        finally:
            self.model.train(was_training)
        return out

    def _generate_vllm(self, contexts, max_new_tokens) -> list[Sample]:
        """Sampling through TRL's vLLM engine (temperature/top_p come from the GRPO config). vLLM reports the
        log-probability of sampled tokens only, so the EOS that may close the trajectory gets NaN, which TRL
        treats as 'no importance-sampling correction' for that token."""
        stops = [self.get_feedback_id, self.eos_id]
        self.vllm.generation_kwargs = {**(self.vllm.generation_kwargs or {}), "stop_token_ids": stops,
                                       "max_tokens": int(max_new_tokens)}
        _, completions, logprobs, _ = self.vllm.generate(prompts=[list(c) for c in contexts], images=None,
                                                         num_generations=1)
        out = []
        for ids, lps in zip(completions, logprobs or [None] * len(completions)):
            ids = list(ids)
            n, stopped = len(ids), "length"
            for t, tok in enumerate(ids):
                if tok in stops:
                    n, stopped = t + 1, ("feedback" if tok == self.get_feedback_id else "eos")
                    break
            ids = ids[:n]
            lp = [float("nan") if (x is None or x[0] is None) else float(x[0]) for x in (lps or [])][:n]
            lp += [float("nan")] * (n - len(lp))
            out.append(Sample(ids=ids, logprobs=lp, eos_logprob=float("nan"), stopped=stopped,
                              text=self.turn_text(ids)))
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
        stops = [self.get_feedback_id, self.eos_id]
        gen = self.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=not greedy,
            temperature=temperature if not greedy else None, top_p=top_p if not greedy else None, top_k=0 if not greedy else None,
            eos_token_id=stops, pad_token_id=pad, output_scores=True, return_dict_in_generate=True,
            cache_implementation=self.cache_implementation)
        new = gen.sequences[:, width:]
        # scores are the processed logits the sample was drawn from (temperature applied): log-probs under the
        # sampling distribution, which is what GRPO's importance ratio compares against
        logps = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in gen.scores], dim=1)  # B x T x V
        out = []
        for i in range(len(contexts)):
            row = new[i].tolist()
            n = len(row)
            stopped = "length"
            for t, tok in enumerate(row):
                if tok in stops:
                    n, stopped = t + 1, ("feedback" if tok == self.get_feedback_id else "eos")
                    break
            row = row[:n]
            lp = logps[i, torch.arange(n), new[i, :n]].tolist() if n else []
            eos_lp = float(logps[i, n - 1, self.eos_id]) if n else 0.0
            if greedy:  # greedy decoding has no sampling distribution; report the model's own
                lp = [0.0 if math.isinf(x) else x for x in lp]
            out.append(Sample(ids=row, logprobs=lp, eos_logprob=eos_lp, stopped=stopped, text=self.turn_text(row)))
        return out


def default_tiny_path(cfg) -> Path:
    """Where the warm-started tiny policy for this config lives (keyed by everything that shapes it)."""
    from dataclasses import asdict

    from relook.config import ROOT, config_hash
    key = config_hash({"policy": {k: v for k, v in asdict(cfg.policy).items()
                                  if k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                           "intermediate_size", "max_positions")},
                       "warmstart": asdict(cfg.warmstart), "version": 1})
    base = Path(cfg.policy.cache_dir)
    if not base.is_absolute():
        base = ROOT / base
    return base / f"tiny-policy-{key}"


def load_policy(cfg, build: bool = True) -> Policy:
    """The policy a config names: a checkpoint path/id, else the kit's warm-started tiny policy (built and cached
    on first use with `relook warmstart`)."""
    lora = None
    if cfg.policy.lora:
        lora = {"r": cfg.policy.lora_r, "lora_alpha": cfg.policy.lora_alpha, "lora_dropout": cfg.policy.lora_dropout,
                "target_modules": list(cfg.policy.lora_targets)}
    if cfg.policy.model:
        return Policy.from_pretrained(cfg.policy.model, device=cfg.policy.device, dtype=cfg.policy.dtype, lora=lora)
    path = default_tiny_path(cfg)
    if not (path / "config.json").exists():
        if not build:
            raise FileNotFoundError(f"no warm-started policy at {path}: run `relook warmstart --config {cfg.name}`")
        from relook.warmstart import warmstart
        warmstart(cfg)
    return Policy.from_pretrained(str(path), device=cfg.policy.device, dtype=cfg.policy.dtype, lora=lora)
