"""A scripted policy for tests: a real tokenizer and model, but `generate` returns scripted turns in order, so
every decision downstream (render, critic, Forced Optimization) runs for real on known pages."""
import random

from relook import synth
from relook.config import PolicyConfig
from relook.policy import EOS, Policy, Sample, build_model, build_tokenizer
from relook.reward import GET_FEEDBACK
from relook.warmstart import turn_text

TASK = synth.generate_tasks(1, seed=5)[0]          # a synthetic task with a known reference page
SPEC = TASK.meta["spec"]


def page(flaws=None):
    return synth.flawed_page(SPEC, random.Random(0), flaws) if flaws else synth.page_html(SPEC)


GOOD = turn_text("Plan: all.", page(), GET_FEEDBACK)
ONE_FLAW = turn_text("Plan: most.", page({0: "missing"}), GET_FEEDBACK)
BLANK = turn_text("Plan: nothing.", page("blank"), GET_FEEDBACK)
FINAL_GOOD = turn_text("Plan: all.", page(), EOS)


class ScriptedPolicy(Policy):
    """A real tokenizer and model; `generate` returns scripted turns in order (with made-up log-probs)."""

    def __init__(self, script):
        tok = build_tokenizer([TASK.prompt, GOOD, ONE_FLAW, BLANK, "feedback text"] * 3, vocab_size=400)
        super().__init__(build_model(tok, PolicyConfig(hidden_size=32, num_layers=1, num_heads=2,
                                                       intermediate_size=64)), tok, "cpu")
        self.script = list(script)
        self.contexts = []
        self.calls = 0

    def generate(self, contexts, max_new_tokens=400, temperature=1.0, top_p=1.0, greedy=False, batch_size=32):
        self.calls += 1
        if max_new_tokens == 1 and not self.script:  # the rollout's padding call on a rank with nothing to do
            return [Sample(ids=[self.eos_id], logprobs=[-0.5], stopped="eos", text="")]
        out = []
        for c in contexts:
            self.contexts.append(list(c))
            text = self.script.pop(0)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][:max_new_tokens]
            out.append(Sample(ids=ids, logprobs=[-0.5] * len(ids), stopped=self.protocol.stopped(ids),
                              text=self.turn_text(ids)))
        return out
