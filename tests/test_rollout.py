"""ReLook episodes: env_mask alignment, Forced Optimization admission and resampling, episode records.
The environment is real (renderer + checklist critic); only the policy's sampling is scripted, so every
admission decision below comes from real scores."""
import json
from pathlib import Path

import pytest

from relook.config import RolloutConfig
from relook.policy import EOS
from relook.rollout import Environment, run_episodes
from relook.warmstart import turn_text

from scripted import BLANK, FINAL_GOOD, GOOD, ONE_FLAW, TASK, ScriptedPolicy, page  # noqa: F401


@pytest.fixture(scope="module")
def env():
    return Environment("checklist")


def cfg(**kw):
    base = dict(max_turns=3, max_resamples=3, max_new_tokens=2000, max_completion_length=6000)
    base.update(kw)
    return RolloutConfig(**base)


def test_zero_rule_ends_an_episode_whose_first_render_is_invalid(env):
    pol = ScriptedPolicy([BLANK, GOOD])
    (ep,) = run_episodes(pol, [TASK], env, cfg())
    assert ep.reward == 0.0 and ep.stop_reason == "invalid first render" and len(ep.turns) == 1
    assert pol.script == [GOOD]  # no revision was sampled: a junk first turn cannot be laundered by a revision
    pol = ScriptedPolicy([BLANK, GOOD])
    (ep,) = run_episodes(pol, [TASK], env, cfg(zero_invalid=False))  # the ablation: revisions go on
    assert ep.reward == 1.0 and [t.admitted for t in ep.turns] == [True, True]


def test_critic_in_loop_inference_revises_an_invalid_first_attempt(env):
    from relook.infer import critic_loop
    (ans,) = critic_loop(ScriptedPolicy([BLANK, GOOD]), [TASK], env, cfg(), rounds=1)
    assert len(ans.turns) == 2 and ans.text == GOOD  # the zero rule still scores the blank page 0; FO admits the fix


def test_evaluate_does_not_judge_critic_in_loop_answers_twice(monkeypatch):
    from relook.evaluate import evaluate
    env = Environment("checklist")
    pages = []
    real = Environment.step_many

    async def counting(self, tasks, texts):
        pages.append((self.items, list(texts)))
        return await real(self, tasks, texts)
    monkeypatch.setattr(Environment, "step_many", counting)
    # judged by the loop's own critic: the final answer's judgement from the loop is reused
    s = evaluate(ScriptedPolicy([BLANK, GOOD]), [TASK], env, mode="critic", rounds=1, rollout_cfg=cfg(),
                 judge_env=env)
    assert pages == [("loop", [BLANK]), ("loop", [GOOD])]
    assert s["valid_render_rate"] == 1.0 and s["critic_score_mean"] == 100.0
    # by default the judge sees the held-out items instead: one more look at the final answer, on those
    pages.clear()
    s = evaluate(ScriptedPolicy([BLANK, GOOD]), [TASK], env, mode="critic", rounds=1, rollout_cfg=cfg())
    assert pages == [("loop", [BLANK]), ("loop", [GOOD]), ("judge", [GOOD])]
    assert s["critic_score_mean"] == 100.0 and s["critic_score_loop_mean"] == 100.0


def test_the_judge_scores_items_the_loop_never_saw():
    from relook.tasks import parse_task
    task = parse_task({"id": "h", "prompt": "A red heading 'Hi'.", "checklist": [
        {"id": "text", "description": "A heading says Hi.", "check": {"kind": "text", "selector": "h1", "text": "Hi"}},
        {"id": "red", "description": "The heading is red.", "judge_only": True,
         "check": {"kind": "style", "selector": "h1", "property": "color", "equals": "#ff0000"}}]})
    page = "```html\n<html><body><h1 style='color:#000'>Hi</h1></body></html>\n```"
    env = Environment("checklist")
    (loop,) = env.step_many_sync([task], [page])
    (judged,) = env.judge().step_many_sync([task], [page])
    assert loop.score == 100.0 and "red" not in loop.feedback.lower()   # the loop's critic never mentions it
    assert judged.score == 0.0
    assert env.items == "loop" and env.judge().critic is env.critic


def test_env_mask_marks_exactly_the_feedback(env):
    pol = ScriptedPolicy([ONE_FLAW, GOOD])
    (ep,) = run_episodes(pol, [TASK], env, cfg())
    assert len(ep.completion_ids) == len(ep.env_mask) == len(ep.logprobs)
    # two admitted turns with one feedback block between them
    assert [t.admitted for t in ep.turns] == [True, True] and ep.reward == 1.0 and ep.stop_reason == "perfect score"
    zeros = [i for i, m in enumerate(ep.env_mask) if m == 0]
    assert zeros == list(range(zeros[0], zeros[-1] + 1))                       # one contiguous block
    block = [ep.completion_ids[i] for i in zeros]
    assert block == pol.feedback_ids(ep.turns[0].feedback)                      # the protocol's feedback block
    assert pol.fb_open_id in block and block[-2:] != [] and pol.fb_close_id in block
    fb_text = pol.decode(block)
    assert "<mllm_feedback>" in fb_text and ep.turns[0].feedback.splitlines()[0][:20] in fb_text
    assert all(ep.logprobs[i] == 0.0 for i in zeros)
    # the policy tokens are exactly the two sampled turns, nothing substituted: the trajectory ends with the
    # <get_feedback> the policy sampled (the perfect score ended the episode), scored with its own log-prob
    policy_ids = [t for t, m in zip(ep.completion_ids, ep.env_mask) if m == 1]
    t1 = pol.tokenizer(ONE_FLAW, add_special_tokens=False)["input_ids"]
    t2 = pol.tokenizer(GOOD, add_special_tokens=False)["input_ids"]
    assert policy_ids == t1 + t2
    assert ep.completion_ids[-1] == pol.get_feedback_id and ep.logprobs[-1] == -0.5
    # the revision was sampled from prompt + turn 1 + feedback
    assert pol.contexts[1] == ep.prompt_ids + t1 + [ep.completion_ids[i] for i in zeros]
    # segments(): policy turn, feedback, policy turn, concatenating back to the completion
    segs = ep.segments()
    assert [m for m, _ in segs] == [True, False, True]
    assert segs[0][1] == t1 and segs[1][1] == [ep.completion_ids[i] for i in zeros]
    assert [t for _, ids in segs for t in ids] == ep.completion_ids


def test_forced_optimization_resamples_until_improvement(env):
    pol = ScriptedPolicy([ONE_FLAW, BLANK, ONE_FLAW, GOOD])
    (ep,) = run_episodes(pol, [TASK], env, cfg())
    assert [(t.turn, t.attempt, t.admitted) for t in ep.turns] == [(0, 0, True), (1, 0, False), (1, 1, False), (1, 2, True)]
    assert ep.turns[1].reward == 0.0 and ep.turns[2].reward == ep.turns[0].reward  # worse, then equal: rejected
    assert ep.reward == 1.0 and ep.resamples == 2
    # rejected samples never enter the trajectory
    t1 = pol.tokenizer(ONE_FLAW, add_special_tokens=False)["input_ids"]
    assert [t for t, m in zip(ep.completion_ids, ep.env_mask) if m][: len(t1)] == t1
    assert sum(ep.env_mask) == len(t1) + len(pol.tokenizer(GOOD, add_special_tokens=False)["input_ids"])


def test_batched_resamples_draw_a_round_in_one_call_and_admit_the_first_improvement(env):
    """rollout.batch_resamples: the K + 1 tries of a round come from one generate call, FO walks them in order, and
    only the tries it reaches are rendered, judged and recorded; the same admissions as drawing them one by one."""
    script = [ONE_FLAW, BLANK, ONE_FLAW, GOOD, BLANK]                 # turn 1, then the round's 4 tries
    pol = ScriptedPolicy(script)
    (ep,) = run_episodes(pol, [TASK], env, cfg(max_turns=2, batch_resamples=True))
    assert pol.calls == 2 and pol.script == []                        # first turn + one call for the whole round
    assert [(t.turn, t.attempt, t.admitted) for t in ep.turns] == [(0, 0, True), (1, 0, False), (1, 1, False),
                                                                     (1, 2, True)]   # the 4th try was never judged
    assert ep.reward == 1.0 and ep.resamples == 2
    assert pol.contexts[1] == pol.contexts[2] == pol.contexts[3] == pol.contexts[4]  # i.i.d. draws, one context
    one_by_one = ScriptedPolicy(script[:4])
    (ref,) = run_episodes(one_by_one, [TASK], env, cfg(max_turns=2))
    assert one_by_one.calls == 4 and ref.completion_ids == ep.completion_ids and ref.env_mask == ep.env_mask


def test_reflection_stops_after_k_failed_resamples(env):
    pol = ScriptedPolicy([ONE_FLAW] + [BLANK] * 3)
    (ep,) = run_episodes(pol, [TASK], env, cfg(max_resamples=2))
    assert len(ep.turns) == 1 + 3 and not any(t.admitted for t in ep.turns[1:])
    assert ep.stop_reason == "no improvement" and ep.reward == ep.turns[0].reward
    assert all(ep.env_mask) and ep.completion_ids[-1] == pol.get_feedback_id  # as sampled


def test_without_forced_optimization_a_worse_revision_is_taken(env):
    pol = ScriptedPolicy([ONE_FLAW, BLANK, GOOD])
    (ep,) = run_episodes(pol, [TASK], env, cfg(forced_optimization=False, zero_invalid=False))
    assert [t.admitted for t in ep.turns] == [True, True, True]
    assert ep.reward == 1.0 and ep.turns[1].reward == 0.0
    pol = ScriptedPolicy([ONE_FLAW, BLANK])
    (ep,) = run_episodes(pol, [TASK], env, cfg(forced_optimization=False, max_turns=2))
    assert ep.reward == 0.0  # the trajectory ends on the regression


def test_policy_may_end_and_budget_stops_revisions(env):
    pol = ScriptedPolicy([turn_text("Plan.", page({0: "missing"}), EOS)])
    (ep,) = run_episodes(pol, [TASK], env, cfg())
    assert ep.stop_reason == "policy ended" and len(ep.turns) == 1 and ep.completion_ids[-1] == pol.eos_id
    pol = ScriptedPolicy([ONE_FLAW, GOOD])
    n1 = len(pol.tokenizer(ONE_FLAW, add_special_tokens=False)["input_ids"])
    (ep,) = run_episodes(pol, [TASK], env, cfg(max_completion_length=n1 + 40))
    assert ep.stop_reason == "completion budget" and len(ep.completion_ids) <= n1 + 40


def test_batch_of_episodes_and_records(env, tmp_path):
    pol = ScriptedPolicy([ONE_FLAW, GOOD, BLANK, GOOD, BLANK])  # turn 0 for 3 episodes, then revisions
    eps = run_episodes(pol, [TASK] * 3, env, cfg(max_turns=2, max_resamples=0), record_dir=tmp_path,
                       ids=["a", "b", "c"])
    # turn 0: a=one flaw, b=perfect (done), c=blank (the zero rule ends it); a's revision improves
    assert [e.reward for e in eps] == [1.0, 1.0, 0.0]
    assert [e.stop_reason for e in eps] == ["perfect score", "perfect score", "invalid first render"]
    assert [len(e.turns) for e in eps] == [2, 1, 1]
    lines = [json.loads(x) for x in (tmp_path / "chains.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["a", "b", "c"]
    for x, e in zip(lines, eps):
        assert x["reward"] == e.reward and len(x["turns"]) == len(e.turns)
        for t in x["turns"]:
            assert {"turn", "attempt", "code", "score", "feedback", "admitted", "shots"} <= t.keys()
            if t["valid"]:
                assert len(t["shots"]) == 3 and all((tmp_path / p).is_file() for p in t["shots"])  # relative to chains.jsonl


def test_ranks_make_the_same_number_of_generate_calls(env):
    """Two ranks (threads with an all-reduce made of a barrier): rank 0's episode needs resamples, rank 1's ends at
    once. A collective generation backend deadlocks unless both call generate equally often; with `sync` they do,
    and rank 1's padding calls change nothing in its episodes."""
    import threading
    flags, barrier = [False, False], threading.Barrier(2, timeout=60)

    def sync_for(rank):
        def sync(flag):
            flags[rank] = flag
            barrier.wait()
            out = any(flags)
            barrier.wait()
            return out
        return sync

    pols = [ScriptedPolicy([ONE_FLAW, BLANK, ONE_FLAW, GOOD]), ScriptedPolicy([GOOD])]
    eps, timings = [None, None], [{}, {}]

    def rank(r):
        eps[r] = run_episodes(pols[r], [TASK], env, cfg(), sync=sync_for(r), timings=timings[r])

    threads = [threading.Thread(target=rank, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert pols[0].calls == pols[1].calls == 4 == timings[0]["generate_calls"] == timings[1]["generate_calls"]
    assert eps[0][0].reward == 1.0 and eps[0][0].resamples == 2
    assert eps[1][0].reward == 1.0 and len(eps[1][0].turns) == 1 and eps[1][0].stop_reason == "perfect score"
    for tm in timings:
        assert tm["generate_s"] > 0 and tm["render_s"] > 0 and tm["critique_s"] > 0


# ------------------------------------------------------------------------------------------------ infra failures
def test_a_render_that_fails_through_our_fault_is_excluded_not_zero():
    """Injected faults: a machine too busy to render in time, a browser that cannot open a page. Neither is the
    page's fault: reward None (left out of the group baseline), counted as infra_failures, never 0."""
    import relook.render as R
    from relook.evaluate import summarize
    from relook.train import episode_stats

    starved = Environment("checklist", render_config=R.RenderConfig(max_wall_s=0.001))
    pol = ScriptedPolicy([GOOD, GOOD])
    (ep,) = run_episodes(pol, [TASK], starved, cfg())
    t = ep.turns[0]
    assert t.infra and not t.valid and t.reward is None and ep.reward is None
    assert ep.stop_reason == "infra failure" and len(ep.turns) == 1
    stats = episode_stats([ep])
    assert stats["infra_failures"] == 1 and stats["critic_failures"] == 0
    rec = {"valid": False, "score": None, "infra": True, "category": "x", "seconds": 0.1}
    ok = {"valid": True, "score": 50.0, "category": "x", "seconds": 0.1}
    s = summarize([rec, ok])
    assert s["valid_render_rate"] == 1.0 and s["infra_failures"] == 1 and s["critic_failures"] == 0


def test_browser_that_cannot_open_pages_is_an_infra_failure(monkeypatch):
    import asyncio

    import relook.render as R

    async def broken(browser, cfg):
        raise RuntimeError("Target page, context or browser has been closed")

    monkeypatch.setattr(R, "new_slot", broken)

    async def go():
        async with R.Renderer() as r:
            return await r.render("<html><body><h1>fine page</h1></body></html>", extract=False), r.stats

    res, stats = asyncio.run(go())
    assert res.error == "render_error" and res.infra and stats["browser_restarts"] == 1
    from relook.critique import not_rendered
    from relook.reward import reward
    assert reward(res, not_rendered(res, "checklist")) is None


def test_revision_diag_counts_each_try_against_the_best_before_it(env):
    """benchmarks/revision_diag.py: the figures the README's multi-turn tuning notes stand on."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "revision_diag.py"
    spec = importlib.util.spec_from_file_location("revision_diag", path)
    diag = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diag)
    (ep,) = run_episodes(ScriptedPolicy([ONE_FLAW, BLANK, ONE_FLAW, GOOD]), [TASK], env, cfg(max_turns=2))
    d = diag.diagnose([ep])
    assert d["revision_vs_best"] == {"better": 1, "equal": 1, "worse": 1}   # blank, the same page, the fix
    assert d["revision_tries"] == 3 and d["revision_admitted"] == 1 and d["per_try_admission"] == 1 / 3
    assert d["mean_admitted_turns"] == 2 and d["stop_reasons"] == {"perfect score": 1}


def test_a_pixels_only_critic_gets_renders_without_dom():
    # an MLLM critic never reads the DOM, so the environment's renders skip the snapshots (RenderConfig.dom)
    from relook.critique import Critic, Critique
    seen = []

    class Pixels(Critic):
        name, reads_dom = "pixels", False

        async def critique(self, task, render):
            seen.append((render.config.dom, len(render.dom), len(render.screenshots)))
            return Critique(score=50.0, feedback="ok", critic=self.name)

    r = Environment(Pixels()).step_many_sync([TASK], [GOOD])[0]
    assert seen == [(False, 0, 3)] and r.render.valid
