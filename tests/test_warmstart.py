"""Warm-start demonstrations: a revision fixes what the feedback names and only that; a self-edit revises blind."""
import random
from dataclasses import replace

from relook import synth
from relook.config import WarmstartConfig
from relook.protocol import SELF_EDIT_FEEDBACK
from relook.warmstart import _named, _revision, make_demos

TASK = synth.generate_tasks(1, seed=11)[0]
SPEC = TASK.meta["spec"]
SURE = replace(WarmstartConfig(), p_fix=1.0, p_self_fix=0.0, p_revision_invalid=0.0, p_revision_flawed=0.0)


def test_a_revision_fixes_what_the_feedback_names_and_nothing_else():
    flaws = {0: synth.COMPONENTS[SPEC["components"][0]["kind"]].flaws[0],
             1: synth.COMPONENTS[SPEC["components"][1]["kind"]].flaws[0]}
    rng = random.Random(0)
    kind, _, _, left = _revision(SPEC, rng, SURE, "flawed", flaws, named={0})
    assert kind == "flawed" and left == {1: flaws[1]}       # the named flaw is gone, the other one stays
    kind, code, _, left = _revision(SPEC, rng, SURE, "flawed", flaws, named={0, 1})
    assert kind == "perfect" and left == {} and code == synth.page_html(SPEC)
    # without feedback (self-edit) nothing is known: with p_self_fix 0 every flaw stays
    assert _revision(SPEC, rng, SURE, "flawed", flaws, named=None)[3] == flaws
    # a weak policy's revision: with p_fix 0 nothing is fixed even when named
    assert _revision(SPEC, rng, replace(SURE, p_fix=0.0), "flawed", flaws, named={0, 1})[3] == flaws


def test_named_components_come_from_the_critics_failed_items():
    from relook.rollout import Environment
    from relook.warmstart import turn_text
    env = Environment("checklist")
    comp = SPEC["components"][0]
    page = synth.flawed_page(SPEC, random.Random(0), {0: "missing"})
    (r,) = env.step_many_sync([TASK], [turn_text("Plan: x.", page)])
    assert _named(SPEC, r.critique) == {0}, (comp, [it for it in r.critique.items if not it.passed])


def test_demos_carry_the_real_feedback_and_self_edits_get_none():
    from relook.rollout import Environment
    env = Environment("checklist")
    tasks = synth.generate_tasks(6, seed=3)
    ws = replace(WarmstartConfig(), demos_per_task=2, p_self_edit=0.5, p_perfect=0.0, p_no_code=0.0, p_blank=0.0,
                 p_broken=0.0)
    demos = make_demos(tasks, ws, env, seed=1)
    assert len(demos) == 12 and all(len(d.feedback) == len(d.turns) - 1 for d in demos)
    multi = [d for d in demos if d.feedback]
    assert multi
    by_id = {t.id: t for t in tasks}
    for d in multi:
        blind = [f == SELF_EDIT_FEEDBACK for f in d.feedback]
        assert all(blind) or not any(blind)                  # a demo is either self-edit or critic-driven
        if not any(blind):                                   # the feedback is what the critic says of that turn
            (r,) = env.step_many_sync([by_id[d.task_id]], [d.turns[0] + "<get_feedback>"])
            assert d.feedback[0] == r.feedback


def test_always_ask_ends_every_demonstrated_turn_with_the_feedback_tag():
    """warmstart.always_ask: the policy learns to ask after every turn (the environment ends the episode); without
    it a demo's last turn teaches the end-of-turn token."""
    from relook.policy import build_tokenizer
    from relook.protocol import Protocol
    from relook.rollout import Environment
    from relook.warmstart import corpus, encode_demo
    tasks = synth.generate_tasks(4, seed=5)
    env = Environment("checklist")
    demos = make_demos(tasks, replace(WarmstartConfig(), demos_per_task=2, p_perfect=0.5), env, seed=2)
    proto = Protocol(build_tokenizer(corpus(demos, tasks), 1024))
    for always in (True, False):
        for d in demos:
            ids, labels = encode_demo(proto, d, ask_last=always)
            ends = [t for t, lab in zip(ids, labels) if lab != -100 and t in (proto.get_feedback_id, proto.done_id)]
            assert len(ends) == len(d.turns)                 # one end per policy turn, each trained
            assert ends[:-1] == [proto.get_feedback_id] * (len(ends) - 1)
            assert ends[-1] == (proto.get_feedback_id if always else proto.done_id)


def test_vary_style_keeps_a_demos_look_across_its_turns_and_the_checklist_blind_to_it():
    """warmstart.vary_style: a look the task does not ask for, kept by every revision (so a revision must copy the
    page it revises); the reference page in any look still meets every checklist item."""
    from relook.rollout import Environment
    from relook.warmstart import FONTS, restyle, turn_text
    env = Environment("checklist")
    tasks = synth.generate_tasks(4, seed=7)
    pages = [restyle(synth.page_html(t.meta["spec"]), (font, px)) for t in tasks
             for font, px in ((FONTS[1], 8), (FONTS[2], 24))]
    results = env.step_many_sync([t for t in tasks for _ in range(2)], [turn_text("Plan: x.", p) for p in pages])
    assert all(r.valid and r.score == 100.0 for r in results), [(r.score, r.feedback) for r in results]
    ws = replace(WarmstartConfig(), demos_per_task=3, p_perfect=0.0, p_no_code=0.0, p_blank=0.0, p_broken=0.0,
                 vary_style=True)
    demos = make_demos(tasks, ws, env, seed=3)
    looks = set()
    for d in demos:
        fonts = {f for t in d.turns for f in FONTS if f"font-family:{f}\"" in t}
        assert len(fonts) <= 1                               # one look per demo, kept by its revisions
        looks |= fonts
    assert len(looks) > 1                                     # and looks differ between demos
