"""Inference modes: base and critic-free self-edit on a real (random, tiny) sampling policy."""
import pytest

from relook import infer, synth
from relook.config import PolicyConfig
from relook.policy import Policy, build_model, build_tokenizer

TASKS = synth.generate_tasks(5, seed=3)


@pytest.fixture(scope="module")
def policy():
    import torch
    torch.manual_seed(0)
    tok = build_tokenizer([t.prompt for t in TASKS] + [t.reference_html for t in TASKS], vocab_size=400)
    return Policy(build_model(tok, PolicyConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)),
                  tok, "cpu")


def test_self_edit_first_round_is_the_base_draw(policy):
    base = infer.base(policy, TASKS, max_new_tokens=24, seed=7)
    se = infer.self_edit(policy, TASKS, rounds=2, max_new_tokens=24, seed=7)
    firsts = infer.first_passes(se)
    assert [a.text for a in firsts] == [a.text for a in base]
    assert [a.n_tokens for a in firsts] == [a.n_tokens for a in base]
    assert all(0 < f.seconds <= s.seconds for f, s in zip(firsts, se))
    assert len({a.text for a in base}) > 1  # really sampled, not one degenerate string
    other = infer.base(policy, TASKS, max_new_tokens=24, seed=8)
    assert [a.text for a in other] != [a.text for a in base]


def test_compare_modes_samples_the_first_attempts_once(policy, monkeypatch, tmp_path):
    from relook.evaluate import compare_modes, load_records
    from relook.rollout import Environment
    calls = []
    real = Policy.generate

    def counting(self, contexts, *a, **kw):
        calls.append(len(contexts))
        return real(self, contexts, *a, **kw)
    monkeypatch.setattr(Policy, "generate", counting)
    env = Environment("checklist")
    res = compare_modes(policy, TASKS, env, ("base", "self-edit"), rounds=1, max_new_tokens=24, seed=7,
                        out_dir=tmp_path)
    assert calls[0] == len(TASKS) and len(calls) <= 2       # one first round (+ one revision round at most)
    assert res["base"]["n_tasks"] == len(TASKS) and res["base"]["mean_turns"] == 1.0
    assert res["self-edit"]["seconds_per_task"] >= res["base"]["seconds_per_task"]
    solo = infer.base(policy, TASKS, max_new_tokens=24, seed=7)   # base alone gives the same answers
    assert [r["answer"] for r in load_records(tmp_path / "eval_base.jsonl")] == [a.text for a in solo]
