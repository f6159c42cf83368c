"""relook.evaluate's statistics: paired gaps, claims against 2 SE, the self-edit share of the critic's gain."""
import json
import math

import pytest

from relook.evaluate import claim, load_records, paired_gap, self_edit_keeps


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
