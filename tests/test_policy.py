"""The policy: tokenizer with turn tags, the tiny model, generation, save/load by path, and the same path loading
a real (locally saved) Hugging Face checkpoint with a LoRA adapter — never a download."""
import pytest
import torch

from relook.config import PolicyConfig
from relook.policy import EOS, Policy, build_model, build_tokenizer
from relook.protocol import TURN_TAGS
from relook.reward import FEEDBACK_CLOSE, FEEDBACK_OPEN, GET_FEEDBACK

CORPUS = ["<html><body><h1 style=\"color:#1a237e\">Hello</h1></body></html>", "Plan: header.", "make a page"] * 20


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tok = build_tokenizer(CORPUS, vocab_size=300)
    model = build_model(tok, PolicyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    return Policy(model, tok, "cpu")


def test_turn_tags_are_single_special_tokens(tiny):
    tok = tiny.tokenizer
    for tag in (GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE, EOS):
        ids = tok(f"x{tag}y", add_special_tokens=False)["input_ids"]
        assert tok.convert_tokens_to_ids(tag) in ids
    text = '<header style="background:#1a237e">Über ✓</header>'  # bytes outside the corpus still round-trip
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    assert tiny.prompt_ids("make a page")[-1] == tok.convert_tokens_to_ids("<|assistant|>")


def test_generation_returns_aligned_logprobs_and_restores_mode(tiny):
    tiny.model.train()
    torch.manual_seed(0)
    samples = tiny.generate([tiny.prompt_ids("make a page"), tiny.prompt_ids("x")], max_new_tokens=12)
    assert tiny.model.training  # TRL tells train from eval steps by model.training
    for s in samples:
        assert len(s.ids) == len(s.logprobs) and 1 <= len(s.ids) <= 12
        assert all(lp <= 0 for lp in s.logprobs)
        assert s.stopped in ("feedback", "eos", "length")
        if s.stopped != "length":
            assert s.ids[-1] in tiny.stop_ids


def test_logprobs_match_a_teacher_forced_forward(tiny):
    torch.manual_seed(1)
    ctx = tiny.prompt_ids("make a page")
    (s,) = tiny.generate([ctx], max_new_tokens=8, temperature=0.7)
    with torch.no_grad():
        logits = tiny.model(input_ids=torch.tensor([ctx + s.ids])).logits[0, len(ctx) - 1:-1] / 0.7
    want = torch.log_softmax(logits.float(), -1)[torch.arange(len(s.ids)), torch.tensor(s.ids)]
    assert torch.allclose(torch.tensor(s.logprobs), want, atol=1e-3)


def test_save_and_load_by_path(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "p")
    again = Policy.from_pretrained(str(tmp_path / "p"), device="cpu")
    assert again.get_feedback_id == tiny.get_feedback_id and len(again.tokenizer) == len(tiny.tokenizer)
    x = torch.tensor([tiny.prompt_ids("make a page")])
    with torch.no_grad():
        assert torch.allclose(tiny.model(input_ids=x).logits, again.model(input_ids=x).logits, atol=1e-5)


def test_real_checkpoint_path_with_lora(tmp_path):
    """A Qwen2-architecture checkpoint saved locally with a tokenizer that lacks the turn tags — the shape of a
    real Qwen2.5 checkpoint, small enough for CI. Policy.from_pretrained adds the tags and wraps a LoRA adapter
    whose target modules are the paper models' names."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel()
    raw.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>", unk_token="<unk>")
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                         "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    n_before = len(tok)
    model.save_pretrained(tmp_path / "qwen")
    tok.save_pretrained(tmp_path / "qwen")
    pol = Policy.from_pretrained(str(tmp_path / "qwen"), device="cpu",
                                 lora={"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]})
    assert pol.tokenizer.convert_tokens_to_ids(GET_FEEDBACK) == pol.get_feedback_id >= n_before  # added
    assert pol.model.get_input_embeddings().weight.shape[0] >= len(pol.tokenizer)
    trainable = [n for n, p in pol.model.named_parameters() if p.requires_grad]
    # LoRA matrices, plus the turn tags' rows of the embedding and (untied, as in Qwen2.5-7B) of lm_head
    assert trainable and all("lora_" in n or "token_adapter" in n for n in trainable)
    assert any("q_proj" in n for n in trainable)
    assert {n.split(".token_adapter")[0].rsplit(".", 1)[-1] for n in trainable if "token_adapter" in n} \
        == {"embed_tokens", "lm_head"}
    tags = pol.tokenizer.convert_tokens_to_ids(list(TURN_TAGS))
    deltas = [p for n, p in pol.model.named_parameters() if "trainable_tokens_delta" in n]
    assert len(deltas) == 2 and all(p.requires_grad and p.shape[0] == len(tags) for p in deltas)  # tag rows only
    (s,) = pol.generate([pol.prompt_ids("make a page")], max_new_tokens=5)
    assert len(s.ids) == len(s.logprobs) > 0
    # a fresh adapter is the identity (lora_B = 0): give it weights, as training would, so reloading can be checked
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in pol.model.named_parameters():
            if "lora_B" in n or "trainable_tokens_delta" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    x = torch.tensor([pol.prompt_ids("make a page") + pol.feedback_ids("fix it")])   # tag rows take part
    pol.model.eval()
    with torch.no_grad():
        tuned = pol.model(input_ids=x).logits
    pol.save_pretrained(tmp_path / "adapter")  # saves the adapter, loadable on the base
    back = Policy.from_pretrained(str(tmp_path / "qwen"), device="cpu", adapter=str(tmp_path / "adapter"))
    base = Policy.from_pretrained(str(tmp_path / "qwen"), device="cpu")
    assert any("lora_" in n for n, _ in back.model.named_parameters())
    back.model.eval()
    base.model.eval()
    with torch.no_grad():
        assert torch.allclose(back.model(input_ids=x).logits, tuned, atol=1e-5)    # the adapter came back
        assert not torch.allclose(base.model(input_ids=x).logits, tuned, atol=1e-3)  # and it is not the base model


def test_vllm_sampling_glue(tiny):
    """With use_vllm, turns come from TRL's VLLMGeneration: stop tokens and per-turn budget are passed, outputs
    are cut at the stop token, missing log-probs are NaN (no importance correction). A fake engine stands in for
    vLLM (no GPU here); the real one is exercised on GPU machines."""
    import math

    class FakeVLLM:
        generation_kwargs = {"seed": 1}

        def generate(self, prompts, images, num_generations):
            self.seen = (prompts, dict(self.generation_kwargs), num_generations)
            comp = [[5, 6, tiny.get_feedback_id, 7], [8, 9]]
            return prompts, comp, [[[-0.1], [-0.2], [-0.3], [-0.4]], [[-0.5], [None]]], None

    fake = FakeVLLM()
    tiny.vllm = fake
    try:
        a, b = tiny.generate([[1, 2], [3]], max_new_tokens=33)
    finally:
        tiny.vllm = None
    prompts, kw, n = fake.seen
    assert prompts == [[1, 2], [3]] and n == 1 and kw["max_tokens"] == 33 and kw["seed"] == 1
    assert kw["stop_token_ids"] == tiny.stop_ids and tiny.stop_ids[:1] == [tiny.get_feedback_id]
    assert a.ids == [5, 6, tiny.get_feedback_id] and a.stopped == "feedback" and a.logprobs == [-0.1, -0.2, -0.3]
    assert b.ids == [8, 9] and b.stopped == "length" and b.logprobs[0] == -0.5 and math.isnan(b.logprobs[1])


def test_padded_embedding_is_never_shrunk(tmp_path):
    """Qwen2.5 pads its embedding (152,064 rows for 151,668 tokens) and vLLM's copy of the model keeps that shape:
    adding the turn tags uses the padding rows instead of resizing to len(tokenizer)."""
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel()
    raw.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=120, special_tokens=["<|endoftext|>", "<|im_end|>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}<|im_end|>{% endfor %}"
    rows = len(tok) + 64                                               # padded, like Qwen2.5's
    Qwen2ForCausalLM(Qwen2Config(vocab_size=rows, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    pol = Policy.from_pretrained(str(tmp_path / "m"), device="cpu")
    assert len(pol.tokenizer) == len(tok) + 3                          # the tags were added ...
    assert pol.model.get_input_embeddings().weight.shape[0] == rows    # ... inside the padding: no resize
    assert pol.model.get_output_embeddings().weight.shape[0] == rows
    # each tag row starts at the mean of its text's ordinary tokens, not at the untrained padding row
    w = pol.model.get_input_embeddings().weight
    pieces = pol.tokenizer("get feedback", add_special_tokens=False)["input_ids"]
    assert torch.allclose(w[pol.get_feedback_id], w[pieces].mean(0))


def test_auto_device_is_this_ranks_gpu(monkeypatch):
    """Under torchrun / accelerate every rank must load onto its own GPU, not all onto cuda:0."""
    from relook.policy import pick_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert pick_device("auto") == "cuda:3" and pick_device("cpu") == "cpu"
    monkeypatch.delenv("LOCAL_RANK")
    assert pick_device("auto") == "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == "cpu"
