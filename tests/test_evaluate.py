"""relook.evaluate's statistics: paired gaps (scipy), claims by their confidence interval, the self-edit share of the
critic's gain."""
import json
import math

import pytest

from relook.evaluate import (CLAIMS, claim, keeps_line, load_evals, load_records, paired_gap, self_edit_keeps,
                             verdict_line, verdicts)


def recs(scores, valid=None):
    return [{"task_id": f"t{i}", "score": s, "valid": (valid[i] if valid else s is not None)}
            for i, s in enumerate(scores)]


def test_paired_gap_is_scipys_paired_t_test():
    from scipy import stats
    a, b = [10, 20, 30, 40, 55], [8, 20, 26, 40, 50]
    g = paired_gap(recs(a), recs(b))
    d = [x - y for x, y in zip(a, b)]
    t = stats.ttest_rel(a, b)
    assert (g["gap"], g["n"]) == (sum(d) / 5, 5)
    assert g["se"] == pytest.approx(math.sqrt(sum((x - sum(d) / 5) ** 2 for x in d) / 4 / 5))
    assert (g["ci_low"], g["ci_high"]) == pytest.approx(tuple(t.confidence_interval(0.95)))
    assert g["p"] == pytest.approx(t.pvalue)


def test_paired_gap_pairs_by_task_averages_seeds_and_skips_failed_judgements():
    a = recs([50, None, 70])
    b = list(reversed(recs([40, 60, 65])))             # order does not matter, task ids do
    g = paired_gap(a, b)
    assert g["n"] == 2 and g["gap"] == pytest.approx((10 + 5) / 2)
    assert math.isnan(paired_gap(recs([1]), recs([0]))["se"])   # one pair: no spread to speak of
    # two seeds of the same tasks: each task's value is its mean over seeds
    a2 = [dict(r, seed=0) for r in recs([50, 60, 70])] + [dict(r, seed=1) for r in recs([52, 62, 80])]
    b2 = [dict(r, seed=0) for r in recs([40, 60, 65])] + [dict(r, seed=1) for r in recs([40, 60, 65])]
    g = paired_gap(a2, b2)
    assert g["n"] == 3 and g["gap"] == pytest.approx(((51 - 40) + (61 - 60) + (75 - 65)) / 3)
    c = claim(a2, b2)
    assert c["per_seed"] == {0: pytest.approx(5.0), 1: pytest.approx(9.667, abs=1e-3)}


def test_claim_needs_the_confidence_interval_clear_of_zero():
    base = recs([10, 20, 30, 40, 50])
    assert claim(recs([30, 41, 49, 62, 70]), base)["verdict"] == "held"
    assert claim(recs([-10, 1, 9, 22, 30]), base)["verdict"] == "did NOT hold"
    assert claim(recs([12, 18, 33, 38, 51]), base)["verdict"] == "inconclusive"
    c = claim(recs([1, 2], valid=[True, True]), recs([1, 2], valid=[False, True]), "valid")
    assert (c["gap"], c["n"], c["verdict"]) == (0.5, 2, "inconclusive")
    c = claim(recs([5, 6, 7]), recs([3, 4, 5]))        # every task +2: no spread, the gap is exact
    assert (c["gap"], c["se"], c["verdict"]) == (2.0, 0.0, "held")


def test_self_edit_keeps():
    modes = {"base": {"critic_score_mean": 30.0, "seconds_per_task": 0.2},
             "self-edit": {"critic_score_mean": 36.0, "seconds_per_task": 0.25},
             "critic": {"critic_score_mean": 38.0, "seconds_per_task": 1.0}}
    k = self_edit_keeps(modes)
    assert k["kept"] == pytest.approx(0.75) and (k["gain_self_edit"], k["gain_critic"]) == (6.0, 8.0)
    assert k["critic_cost_vs_self_edit"] == pytest.approx(4.0)
    assert keeps_line(k).startswith("self-edit keeps 75% of the critic-in-loop gain")
    modes["critic"]["critic_score_mean"] = 30.0        # no critic gain: the share is undefined, not a division error
    assert self_edit_keeps(modes)["kept"] is None
    modes["critic"]["critic_score_mean"], modes["self-edit"]["critic_score_mean"] = 31.2, 26.2
    k = self_edit_keeps(modes)                         # self-edit lost points: no "-328% kept"
    assert k["kept"] is None and "%" not in keeps_line(k) and "-3.8" in keeps_line(k) and "+1.2" in keeps_line(k)


def test_load_records_reads_what_evaluate_writes(tmp_path):
    rows = recs([1, 2, None])
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_records(tmp_path / "e.jsonl") == rows


def test_verdicts_weigh_each_claim_whose_two_sides_were_measured():
    warm = recs([10, 20, 30, 40, 50], valid=[False, True, True, True, True])
    full = recs([30, 41, 49, 62, 70])                  # clearly better than the warm start, all valid
    text = recs([31, 40, 50, 61, 71])                  # as good as full: the vision claim is not shown
    v = verdicts({"warm_start": warm, "full": full, "text_critic": text})
    assert set(v) == {"rl_valid", "rl_score", "vision"}  # no_fo, no_zero_rule and the modes were not measured
    assert v["rl_score"]["verdict"] == "held" and v["vision"]["verdict"] == "inconclusive"
    c = claim(full, warm, "valid")
    assert v["rl_valid"]["verdict"] == c["verdict"] and v["rl_valid"]["gap"] == round(c["gap"], 4)
    assert {k: v["rl_valid"][k] for k in ("claim", "on", "a", "b", "n")} == {
        "claim": "RL raises ValidRenderRate over the warm start", "on": "valid", "a": "full", "b": "warm_start",
        "n": 5}
    assert (c["gap"], c["n"]) == (0.2, 5)
    # the direction is the paper's: self-edit over one pass; a worse self-edit did NOT hold
    v = verdicts({"full": full, "full_self-edit": warm})
    assert list(v) == ["self_edit"] and v["self_edit"]["verdict"] == "did NOT hold"
    assert v["self_edit"]["gap"] == pytest.approx(-20.4)
    sv = v["self_edit"]
    assert verdict_line(sv) == ("[did NOT hold] critic-free self-edit improves on one pass: "
                                f"full_self-edit - full = -20.40 points (95% CI {sv['ci_low']:+.2f}.."
                                f"{sv['ci_high']:+.2f}, p {sv['p']:.3g}, 5 tasks)")
    assert verdicts({}) == {} and {c[0] for c in CLAIMS} >= {"rl_valid", "rl_score", "vision", "self_edit",
                                                              "critic_loop", "fo", "zero_rule"}


def test_load_evals_reads_the_records_that_exist(tmp_path):
    for name, scores in (("full", [1, 2]), ("full_critic", [3, 4])):
        (tmp_path / f"eval_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs(scores)))
    got = load_evals(tmp_path, ["full", "full_critic", "no_fo"])
    assert got == {"full": recs([1, 2]), "full_critic": recs([3, 4])}
    assert verdicts(got)["critic_loop"]["gap"] == 2.0
