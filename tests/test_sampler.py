"""relook.sampler, the CPU sampling path: HF generate's distribution (same tokens when greedy, same log-probabilities
of the warped logits, an exact categorical draw), with what contexts share computed once, finished sequences
leaving the batch, and the trained weights reaching the sampler at every change."""
import pytest
import torch
from scipy import stats

from relook import sampler as S
from relook.config import PolicyConfig
from relook.policy import Policy, build_model, build_tokenizer

CORPUS = ["<html><body><h1 style=\"color:#1a237e\">Hello</h1></body></html>", "Plan: header.", "make a page",
          "a list of three fruits with a red header"] * 20


@pytest.fixture(scope="module")
def model_and_tok():
    tok = build_tokenizer(CORPUS, vocab_size=300)
    torch.manual_seed(0)
    model = build_model(tok, PolicyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)).eval()
    return model, tok


def contexts(pol):
    """Different lengths, a shared system-like prefix, and a repeated context (a GRPO group)."""
    a, b, c = (pol.prompt_ids(p) for p in ("make a page", "a list of three fruits", "Plan: header. make a page"))
    return [a, b, a, c, a[:-2], b]


def hf_greedy(model, tok, ctxs, n, stops):
    tok.padding_side = "left"
    width = max(map(len, ctxs))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(c)) + c for c in ctxs])
    mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in ctxs])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, do_sample=False,
                             eos_token_id=list(stops), pad_token_id=tok.pad_token_id)
    rows = []
    for r in out[:, width:].tolist():
        cut = next((i + 1 for i, t in enumerate(r) if t in stops), len(r))
        rows.append(r[:cut])
    return rows


def test_greedy_tokens_equal_generate_when_sequences_stop_at_different_steps(model_and_tok):
    model, tok = model_and_tok
    pol = Policy(model, tok, "cpu", sampler="generate")
    ctxs = contexts(pol)
    free = hf_greedy(model, tok, ctxs, 16, [tok.eos_token_id])
    # stop tokens that end some rows early and leave others running: rows leave the batch at different steps
    stops = {free[0][3], free[1][6], tok.eos_token_id}
    want = hf_greedy(model, tok, ctxs, 16, stops)
    assert len({len(w) for w in want}) > 1
    for max_batch in (64, 2):  # one batch, and several
        got = S.sample(model, ctxs, 16, stops, tok.pad_token_id, greedy=True, max_batch=max_batch)
        assert [g for g, _ in got] == want


def test_sampled_logprobs_are_the_warped_distributions(model_and_tok):
    model, tok = model_and_tok
    pol = Policy(model, tok, "cpu", sampler="fast")
    ctxs = contexts(pol)
    torch.manual_seed(3)
    got = S.sample(model, ctxs, 10, pol.stop_ids, tok.pad_token_id, temperature=0.7, top_p=0.9)
    warp = S._warpers(0.7, 0.9, False)
    for c, (ids, lps) in zip(ctxs, got):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([c + ids])).logits[0, len(c) - 1:-1].float()
        want = torch.log_softmax(warp(None, logits), -1)[torch.arange(len(ids)), torch.tensor(ids)]
        assert torch.isfinite(want).all()  # never a token top-p removed
        assert torch.allclose(torch.tensor(lps), want, atol=1e-4)


def test_draw_is_the_categorical_distribution():
    probs = torch.tensor([0.5, 0.0, 0.3, 0.15, 0.05])
    torch.manual_seed(0)
    draws = torch.cat([S._draw(probs.expand(1000, -1)) for _ in range(20)])
    counts = torch.bincount(draws, minlength=5)
    assert counts[1] == 0  # probability zero (a token top-p removed): never drawn
    keep = probs > 0
    assert stats.chisquare(counts[keep].numpy(), (probs[keep] * len(draws)).numpy()).pvalue > 1e-3


def test_a_changed_adapter_changes_what_the_sampler_produces(model_and_tok, tmp_path):
    """LoRA + trainable tag rows, as smol trains: after one optimizer step the sampler samples from the new weights
    (greedy tokens equal HF generate's on the updated peft model), and an unchanged model is not copied again."""
    _, tok = model_and_tok
    torch.manual_seed(1)
    base = build_model(tok, PolicyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64))
    base.save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj", "up_proj"]}
    pol = Policy.from_pretrained(str(tmp_path / "base"), device="cpu", lora=lora, sampler="fast")
    assert pol.fast is not None
    ctxs = contexts(pol)
    before = [s.ids for s in pol.generate(ctxs, max_new_tokens=8, greedy=True)]
    assert pol.fast.frozen(pol.model) is pol.fast.frozen(pol.model)
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=0.05)
    x = torch.tensor([ctxs[0] + before[0]])
    for _ in range(3):
        pol.model(input_ids=x, labels=x).loss.mul(-1).backward()  # push the greedy answer away
        opt.step()
        opt.zero_grad()
    after = [s.ids for s in pol.generate(ctxs, max_new_tokens=8, greedy=True)]
    assert after != before
    slow = Policy(pol.model, pol.tokenizer, "cpu", sampler="generate")
    assert after == [s.ids for s in slow.generate(ctxs, max_new_tokens=8, greedy=True)]


def test_batches_are_bounded_and_cover_every_context():
    ctxs = [[1] * n for n in (5, 50, 7, 300, 20, 5, 9)]
    out = S.batches(ctxs, max_new_tokens=100, max_batch=3, max_batch_tokens=800)
    assert sorted(i for b in out for i in b) == list(range(len(ctxs)))
    for b in out:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * (max(len(ctxs[i]) for i in b) + 100) <= 800
