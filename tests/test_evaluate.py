"""relook.evaluate's statistics: paired gaps, claims against 2 SE, the self-edit share of the critic's gain."""
import json
import math

import pytest

from relook.evaluate import (CLAIMS, claim, load_evals, load_records, paired_gap, self_edit_keeps, verdict_line,
                             verdicts)


def recs(scores, valid=None):
    return [{"task_id": f"t{i}", "score": s, "valid": (valid[i] if valid else s is not None)}
            for i, s in enumerate(scores)]


def test_paired_gap_is_the_mean_per_task_difference_with_its_standard_error():
    gap, se, n = paired_gap(recs([10, 20, 30, 40]), recs([8, 20, 26, 40]))
    d = [2, 0, 4, 0]                                   # per-task differences
    m = sum(d) / 4
    assert (gap, n) == (m, 4)
    assert se == pytest.approx(math.sqrt(sum((x - m) ** 2 for x in d) / 3 / 4))


def test_paired_gap_pairs_by_task_and_skips_failed_judgements():
    a = recs([50, None, 70])
    b = list(reversed(recs([40, 60, 65])))             # order does not matter, task ids do
    gap, se, n = paired_gap(a, b)
    assert n == 2 and gap == pytest.approx((10 + 5) / 2)
    assert math.isnan(paired_gap(recs([1]), recs([0]))[1])   # one pair: no standard error


def test_claim_needs_two_standard_errors_either_way():
    base = recs([10, 20, 30, 40, 50])
    assert claim(recs([30, 41, 49, 62, 70]), base)[0] == "held"
    assert claim(recs([-10, 1, 9, 22, 30]), base)[0] == "did NOT hold"
    assert claim(recs([12, 18, 33, 38, 51]), base)[0] == "inconclusive"
    word, gap, se, n = claim(recs([1, 2], valid=[True, True]), recs([1, 2], valid=[False, True]), "valid")
    assert (gap, n) == (0.5, 2) and word == "inconclusive"


def test_self_edit_keeps():
    modes = {"base": {"critic_score_mean": 30.0, "seconds_per_task": 0.2},
             "self-edit": {"critic_score_mean": 36.0, "seconds_per_task": 0.25},
             "critic": {"critic_score_mean": 38.0, "seconds_per_task": 1.0}}
    k = self_edit_keeps(modes)
    assert k["kept"] == pytest.approx(0.75) and (k["gain_self_edit"], k["gain_critic"]) == (6.0, 8.0)
    assert k["critic_cost_vs_self_edit"] == pytest.approx(4.0)
    modes["critic"]["critic_score_mean"] = 30.0        # no critic gain: the share is undefined, not a division error
    assert math.isnan(self_edit_keeps(modes)["kept"])


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
    word, gap, se, n = claim(full, warm, "valid")
    assert v["rl_valid"] == {"claim": "RL raises ValidRenderRate over the warm start", "verdict": word,
                             "gap": round(gap, 3), "se": round(se, 3), "n": n, "on": "valid",
                             "a": "full", "b": "warm_start"}
    assert (gap, n) == (0.2, 5)
    # the direction is the paper's: self-edit over one pass; a worse self-edit did NOT hold
    v = verdicts({"full": full, "full_self-edit": warm})
    assert list(v) == ["self_edit"] and v["self_edit"]["verdict"] == "did NOT hold"
    assert v["self_edit"]["gap"] == pytest.approx(-20.4)
    assert verdict_line(v["self_edit"]) == ("[did NOT hold] critic-free self-edit improves on one pass: "
                                            f"full_self-edit - full = -20.40 points (paired SE "
                                            f"{v['self_edit']['se']:.2f}, 5 tasks)")
    assert verdicts({}) == {} and {c[0] for c in CLAIMS} >= {"rl_valid", "rl_score", "vision", "self_edit",
                                                              "critic_loop", "fo", "zero_rule"}


def test_load_evals_reads_the_records_that_exist(tmp_path):
    for name, scores in (("full", [1, 2]), ("full_critic", [3, 4])):
        (tmp_path / f"eval_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs(scores)))
    got = load_evals(tmp_path, ["full", "full_critic", "no_fo"])
    assert got == {"full": recs([1, 2]), "full_critic": recs([3, 4])}
    assert verdicts(got)["critic_loop"]["gap"] == 2.0
