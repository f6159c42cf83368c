"""The task format (a public contract), its error messages, the public loaders and the synthetic generator."""
import json

import pytest

from relook import synth
from relook.tasks import (TaskFormatError, load_any, load_artifactsbench, load_task, load_tasks, load_webgen_bench,
                          parse_task, save_tasks)

GOOD = {"id": "t1", "prompt": "A page with a Buy button", "category": "layout",
        "checklist": [{"id": "buy", "description": "There is a Buy button", "check": {"kind": "exists", "selector": "#buy"}},
                      {"id": "c", "description": "It is green", "check": {"kind": "color", "selector": "#buy", "color": "#00ff00", "tolerance": 30}, "weight": 2},
                      {"id": "k", "description": "Clicking shows thanks", "check": {"kind": "click", "selector": "#buy", "then": {"kind": "text", "text": "thanks"}}}]}


def test_parse_good_task_and_roundtrip(tmp_path):
    t = parse_task(GOOD)
    assert t.id == "t1" and [it.weight for it in t.checklist] == [1.0, 2.0, 1.0] and t.checkable
    p = save_tasks([t, parse_task({**GOOD, "id": "t2"})], tmp_path / "x.jsonl")
    back = load_tasks(p)
    assert [b.to_dict() for b in back] == [t.to_dict(), parse_task({**GOOD, "id": "t2"}).to_dict()]


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d.pop("prompt"), "field 'prompt': missing"),
    (lambda d: d.update(checklist="nope"), "field 'checklist': must be a list"),
    (lambda d: d["checklist"][0]["check"].update(kind="colour"), "checklist[0]'.check.kind: unknown kind 'colour'"),
    (lambda d: d["checklist"][0]["check"].pop("selector"), "checklist[0]'.check.selector: missing"),
    (lambda d: d["checklist"][0]["check"].update(selector="div[[["), "checklist[0]'.check.selector: invalid CSS selector"),
    (lambda d: d["checklist"][0]["check"].update(min=0), "checklist[0]'.check.min: must be a positive integer"),
    (lambda d: d["checklist"][1]["check"].update(color="greenish"), "checklist[1]'.check.color: not a color"),
    (lambda d: d["checklist"][1].update(weight=-1), "checklist[1]'.weight: must be a non-negative number"),
    (lambda d: d["checklist"][1]["check"].update(wat=1), "checklist[1]'.check.wat: unknown field"),
    (lambda d: d["checklist"][2]["check"]["then"].update(kind="nope"), "checklist[2]'.check.then.kind: unknown kind"),
    (lambda d: d["checklist"][0].pop("description"), "checklist[0]'.description: missing or empty"),
    (lambda d: d["checklist"].append({"id": "buy", "description": "dup"}), "duplicate item id 'buy'"),
    (lambda d: d["checklist"][0]["check"].update(kind="position", where="middle"), "where: must be one of top"),
])
def test_bad_task_errors_name_line_and_field(tmp_path, mutate, fragment):
    bad = json.loads(json.dumps(GOOD))
    mutate(bad)
    p = tmp_path / "tasks.jsonl"
    p.write_text(json.dumps(GOOD | {"id": "ok"}) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(TaskFormatError) as e:
        load_tasks(p)
    msg = str(e.value)
    assert f"{p} line 3" in msg and fragment in msg, msg


def test_bad_json_line_and_missing_file(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(GOOD) + "\n{not json\n")
    with pytest.raises(TaskFormatError, match=r"line 2: not valid JSON"):
        load_tasks(p)
    with pytest.raises(TaskFormatError, match="no such file"):
        load_tasks(tmp_path / "missing.jsonl")
    (tmp_path / "one.json").write_text("[1, 2")
    with pytest.raises(TaskFormatError, match="not valid JSON"):
        load_task(tmp_path / "one.json")


def test_duplicate_task_ids_rejected(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(TaskFormatError, match="line 2: field 'id': duplicate task id 't1'"):
        load_tasks(p)


def test_artifactsbench_loader(tmp_path):
    rec = {"index": 7, "question": "Build a snake game", "class": "game", "difficulty": "hard",
           "checklist": [{"title": f"Item {i}", "description": f"check {i}", "maxScore": 10} for i in range(10)]}
    p = tmp_path / "ab.json"
    p.write_text(json.dumps([rec]))
    (t,) = load_artifactsbench(p)
    assert t.id == "ab-7" and t.category == "game" and len(t.checklist) == 10 and not t.checkable
    assert t.checklist[3].description == "Item 3: check 3" and t.meta["difficulty"] == "hard"
    assert load_any(p)[0].id == "ab-7"


def test_webgen_bench_loader_on_the_public_test_set(shared_dir):
    path = shared_dir / "data" / "webgen-bench" / "test.jsonl"
    if not path.exists():
        pytest.skip("../shared/data/webgen-bench not present")
    tasks = load_webgen_bench(path)
    assert len(tasks) == 101
    assert sum(len(t.checklist) for t in tasks) == 647
    assert all(t.prompt and t.checklist and not t.checkable for t in tasks)
    assert tasks[0].id == "wg-000001" and "Expected:" in tasks[0].checklist[0].description
    assert load_any(path)[5].id == tasks[5].id


def test_webgen_loader_errors(tmp_path):
    p = tmp_path / "w.jsonl"
    p.write_text(json.dumps({"nope": 1}) + "\n")
    with pytest.raises(TaskFormatError, match="line 1: field 'instruction'"):
        load_webgen_bench(p)


def test_synthetic_generator_is_seeded_and_splits_are_disjoint(tmp_path):
    a = [t.to_dict() for t in synth.generate_tasks(30, seed=3)]
    b = [t.to_dict() for t in synth.generate_tasks(30, seed=3)]
    c = [t.to_dict() for t in synth.generate_tasks(30, seed=4)]
    assert a == b and a != c
    train, evals = synth.write_splits(tmp_path, seed=0, n_train=40, n_eval=10)
    tr, ev = load_tasks(train), load_tasks(evals)
    assert len(tr) == 40 and len(ev) == 10
    assert not {t.prompt for t in tr} & {t.prompt for t in ev}
    assert {t.category for t in tr} == set(synth.CATEGORIES)
    assert all(t.checkable and t.reference_html for t in tr + ev)


def test_components_per_task_can_be_chosen(tmp_path):
    from relook.cli import main
    hard = synth.generate_tasks(40, seed=3, components=(3, 4))
    assert {len(t.meta["spec"]["components"]) for t in hard} == {3, 4}
    assert {len(t.meta["spec"]["components"]) for t in synth.generate_tasks(40, seed=3)} == {2, 3}
    assert all(t.checkable and t.reference_html for t in hard)
    assert main(["tasks", "--out", str(tmp_path / "h"), "--train", "8", "--eval", "4", "--components", "4", "4"]) == 0
    assert {len(t.meta["spec"]["components"]) for t in load_tasks(tmp_path / "h" / "train.jsonl")} == {4}
    assert main(["tasks", "--out", str(tmp_path / "bad"), "--components", "3", "2"]) == 2
    assert not (tmp_path / "bad").exists()


def test_committed_splits_match_the_generator():
    """data/tasks is reproducible from its seed: `python -m relook.synth --out data/tasks --seed 0`."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "data" / "tasks"
    tr, ev = load_tasks(root / "train.jsonl"), load_tasks(root / "eval.jsonl")
    assert len(tr) == 300 and len(ev) == 200
    assert [t.to_dict() for t in tr[:20]] == [t.to_dict() for t in synth.generate_tasks(20, seed=0, prefix="train")]
    assert [t.to_dict() for t in ev[-5:]] == [t.to_dict() for t in synth.generate_tasks(
        200, seed=10_000, prefix="eval", exclude_prompts={t.prompt for t in tr})[-5:]]
    # the tiny config's harder split: `relook tasks --out data/tasks/hard --components 3 4`
    tr, ev = load_tasks(root / "hard" / "train.jsonl"), load_tasks(root / "hard" / "eval.jsonl")
    assert len(tr) == 300 and len(ev) == 200 and not {t.prompt for t in tr} & {t.prompt for t in ev}
    assert [t.to_dict() for t in tr[:20]] == [t.to_dict() for t in synth.generate_tasks(
        20, seed=0, prefix="train", components=(3, 4))]
    assert [t.to_dict() for t in ev[-5:]] == [t.to_dict() for t in synth.generate_tasks(
        200, seed=10_000, prefix="eval", exclude_prompts={t.prompt for t in tr}, components=(3, 4))[-5:]]


def test_held_out_items_are_seen_by_the_judge_only():
    t = synth.generate_tasks(1, seed=4)[0]
    loop, judge = t.view("loop"), t.view("judge")
    assert loop.checklist and judge.checklist
    assert {it.id for it in loop.checklist} | {it.id for it in judge.checklist} == {it.id for it in t.checklist}
    assert not {it.id for it in loop.checklist} & {it.id for it in judge.checklist}
    # one item per component is held out, never a whole component's
    n_comp = len(t.meta["spec"]["components"])
    assert len(judge.checklist) == n_comp
    # the flag round-trips through the public format; a task without it looks the same in every view
    again = parse_task(t.to_dict())
    assert [it.judge_only for it in again.checklist] == [it.judge_only for it in t.checklist]
    plain = parse_task({"id": "p", "prompt": "x", "checklist": [{"description": "a"}, {"description": "b"}]})
    assert plain.view("loop") is plain and plain.view("judge") is plain
    with pytest.raises(TaskFormatError, match="judge_only"):
        parse_task({"id": "p", "prompt": "x", "checklist": [{"description": "a", "judge_only": "yes"}]})
    with pytest.raises(TaskFormatError, match="every item is judge_only"):
        parse_task({"id": "p", "prompt": "x", "checklist": [{"description": "a", "judge_only": True}]})


def test_synthetic_references_pass_and_every_flaw_is_caught():
    """On the offline critic: a task's reference scores 100, and each single flaw costs points."""
    import random
    from relook import render as R
    from relook.critic import ChecklistCritic
    tasks = synth.generate_tasks(16, seed=11)
    crit = ChecklistCritic()
    refs = R.render_many([t.reference_html for t in tasks], extract=False)
    assert [c.score for c in crit.critique_many_sync(tasks, refs)] == [100.0] * len(tasks)
    rng = random.Random(0)
    cases = [(t, synth.flawed_page(t.meta["spec"], rng, {i: f}), f)
             for t in tasks for i, c in enumerate(t.meta["spec"]["components"])
             for f in synth.COMPONENTS[c["kind"]].flaws]
    renders = R.render_many([p for _, p, _ in cases], extract=False)
    scores = crit.critique_many_sync([t for t, _, _ in cases], renders)
    missed = [(t.id, f) for (t, _, f), c in zip(cases, scores) if c.score >= 100]
    assert not missed
