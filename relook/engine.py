"""TRL's vLLM engine, made to serve relook's policies (`train.use_vllm`).

Before each rollout TRL 1.16 pushes the weights being trained into its vLLM engine (VLLMGeneration.sync_weights).
Two things in that push do not fit relook:

* Names. A real policy is a peft model with LoRA and trainable turn-tag rows: its embedding and lm_head are
  wrapped (`model.embed_tokens.token_adapter.base_layer.weight`, `...token_adapter.trainable_tokens_delta.default`).
  TRL strips only `base_model.model.` and `.base_layer` and skips `lora_` names, so vLLM would be sent names its
  model does not have, and the trained tag rows would never reach it. `named_weights` merges the adapter (LoRA
  and the tag rows), sends the base weights under the checkpoint's own names, and unmerges.
* vLLM's CPU backend repacks linear weights for its GEMM kernels after loading and drops the checkpoint-format
  parameters, so loading one tensor at a time fails ("'Parameter' object has no attribute 'weight_loader'").
  `reload_weights` puts them back, loads and repacks; an lm_head tied to the embedding keeps a packed copy of the
  old embedding and is repacked here.

relook.train calls `check_vllm(policy.dtype)` before building the GRPOTrainer (it also makes the engine compute
in the policy's dtype) and `attach(trainer.vllm_generation)` after.
"""
from __future__ import annotations

import functools
import os

from relook.config import ConfigError

# GiB. Without it vLLM's CPU backend sizes its KV cache from a share of RAM, next to the trainer's own copy of
# the model; 1 GiB holds 23k tokens of SmolLM2-135M in float32 (46k in bf16), far more than a rollout needs.
CPU_KV_CACHE_GIB = "1"
# pieces of a peft parameter name that vLLM's checkpoint names do not have
_WRAPPER_PIECES = (".base_layer", ".token_adapter", "modules_to_save.default.", "_checkpoint_wrapped_module.")


def check_vllm(dtype: str | None = None) -> None:
    """A one-line ConfigError when vLLM cannot be imported; on vLLM's CPU backend, a KV cache size unless
    VLLM_CPU_KVCACHE_SPACE is set; with `dtype` (policy.dtype), the engine TRL builds computes in it. Call before
    TRL builds its engine."""
    try:
        from vllm.platforms import current_platform
    except ImportError as e:
        raise ConfigError(f"train.use_vllm: vLLM cannot be imported ({type(e).__name__}: {e}); `make vllm` builds "
                          ".venv-vllm with vLLM's CPU build (GPUs: pip install -e .[vllm])") from None
    if current_platform.is_cpu():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KV_CACHE_GIB)
    if dtype:
        _engine_dtype(dtype)


def _engine_dtype(dtype: str) -> None:
    """TRL builds its LLM with vLLM's dtype "auto", which is bfloat16 for a float32 checkpoint (the CPU policies):
    sampled log-probs then differ from the trainer's by ~0.03 a token, and TRL's sequence-level importance
    weights (the exp of their sum) came out between 0.2 and 1.6 for 200-token turns of SmolLM2. So the engine
    gets the policy's dtype (a no-op for bfloat16 policies on GPUs)."""
    import trl.generation.vllm_generation as vg
    base = vg.LLM.func if isinstance(vg.LLM, functools.partial) else vg.LLM  # a second train() in one process
    vg.LLM = functools.partial(base, dtype=dtype)


def on_cpu() -> bool:
    from vllm.platforms import current_platform
    return current_platform.is_cpu()


def vllm_name(name: str) -> str | None:
    """The checkpoint name under which vLLM loads a (peft-wrapped) parameter; None for a copy peft keeps of a
    module it trains whole (modules_to_save: the trained copy is sent instead)."""
    name = name.removeprefix("base_model.model.")
    if "original_module" in name:
        return None
    for piece in _WRAPPER_PIECES:
        name = name.replace(piece, "")
    return name


def _adapter_params(model) -> set[int]:
    """ids of the adapter's own tensors (LoRA A/B, tag-row deltas): merged into the base weights, never sent."""
    from peft.tuners.tuners_utils import BaseTunerLayer
    from torch import nn
    ids: set[int] = set()
    for m in model.modules():
        if isinstance(m, BaseTunerLayer):
            for attr in m.adapter_layer_names:
                sub = getattr(m, attr, None)
                if isinstance(sub, nn.Module):
                    ids.update(id(p) for p in sub.parameters())
    return ids


def named_weights(model, dist):
    """(vLLM name, tensor) for every weight vLLM's copy of the model holds. A peft model is merged for the length
    of the walk (the base weights then carry LoRA and the trained tag rows) and unmerged at its end: consume the
    tensors (or copy them) before the walk ends. `dist` is TRL's DistributedBackend: under ZeRO-3 its
    gather_params materialises the shards, all at once for a peft model (peft merges whole weights only), one
    tensor at a time otherwise; it is a collective, so every rank must walk."""
    from accelerate.utils import is_peft_model
    if not is_peft_model(model):
        for name, p in model.named_parameters():
            with dist.gather_params([p]):
                yield vllm_name(name), p.data
        return
    skip = _adapter_params(model)
    with dist.gather_params(list(model.parameters())):
        model.merge_adapter()
        try:
            for name, p in model.named_parameters():  # tied weights come once (named_parameters drops repeats)
                target = None if id(p) in skip else vllm_name(name)
                if target is not None:
                    yield target, p.data
        finally:
            model.unmerge_adapter()


def _runner(gen):
    return gen.llm.llm_engine.model_executor.driver_worker.model_runner


def _reload_cpu(gen, weights) -> None:
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead
    runner = _runner(gen)
    runner.reload_weights(weights_iterator=weights)
    for m in runner.model.modules():  # a tied head shares the new weight but still computes with its old packing
        if isinstance(m, ParallelLMHead):
            m.quant_method.process_weights_after_loading(m)  # rebuilt from .weight, so harmless when untied


def sync_weights(gen) -> None:
    """VLLMGeneration.sync_weights for colocate mode: the trained weights into the in-process engine."""
    if gen.enable_sleep_mode:  # as TRL does: the weights' memory must be mapped before it is written
        gen.llm.wake_up(tags=["weights"])
        gen._llm_weights_sleeping = False
    weights = named_weights(gen.model, gen._dist)
    if on_cpu():
        # copies, taken while merged: vLLM finishes some layers (a padded embedding) only after the last tensor,
        # by which time the adapter is unmerged again
        _reload_cpu(gen, [(n, t.detach().clone()) for n, t in weights])
    else:
        model = _runner(gen).model
        for name, t in weights:
            model.load_weights([(name, t)])
    gen.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
    gen.relook_syncs = getattr(gen, "relook_syncs", 0) + 1


def attach(gen):
    """Make TRL's VLLMGeneration push relook's weights: our names in both modes (server mode keeps TRL's
    transport), our push in colocate mode. FSDP keeps TRL's own walk (its gathering is FSDP-specific)."""
    if gen._dist.is_fsdp:
        return gen
    gen._iter_named_params = lambda: named_weights(gen.model, gen._dist)
    if gen.mode == "colocate":
        gen.sync_weights = lambda: sync_weights(gen)
    return gen
