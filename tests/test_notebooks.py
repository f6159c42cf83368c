"""Every notebook runs (papermill, small parameters) and is committed without outputs."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Small parameters so the whole suite stays well inside CI's budget: the smoke config everywhere, temp run dirs.
def params(name: str, tmp) -> dict:
    return {
        "00_tour.ipynb": {"config": "smoke"},
        "01_rendering.ipynb": {"timeout_s": 5.0},
        "02_critic.ipynb": {"timeout_s": 5.0},
        "03_reward_and_forced_optimization.ipynb": {"timeout_s": 3.0, "max_resamples": 10},
        "04_policy_and_rollouts.ipynb": {"config": "smoke", "n_tasks": 3},
        "05_grpo_training.ipynb": {"config": "smoke", "out_dir": str(tmp / "run"), "eval_tasks": 3},
        "06_self_edit_inference.ipynb": {"config": "smoke", "n_tasks": 3, "rounds": 1},
        "07_evaluation_and_ablations.ipynb": {"config": "smoke", "overrides": ["train.steps=1"],
                                               "variants": ["full", "text_critic"], "seeds": [0, 1], "eval_tasks": 3,
                                               "rounds": 1,
                                               "out_root": str(tmp / "ablations")},
        "08_chain_explorer.ipynb": {"config": "smoke", "run_dir": str(tmp / "explore"), "n_tasks": 2},
        "09_real_model.ipynb": {"config": "smol_smoke", "n_tasks": 2, "max_new_tokens": 160},
    }.get(name, {})


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(10)], [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(nb):
    doc = json.loads(nb.read_text())
    for cell in doc["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and not cell.get("execution_count"), f"{nb.name}: strip outputs"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_parameters_cell(nb):
    doc = json.loads(nb.read_text())
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in doc["cells"]), nb.name


@pytest.mark.slow
@pytest.mark.timeout(1500)  # 07 trains every variant once per seed; the rest take a minute or two
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(nb, tmp_path):
    import papermill as pm
    out = tmp_path / nb.name
    pm.execute_notebook(str(nb), str(out), parameters=params(nb.name, tmp_path), cwd=str(nb.parent),
                        kernel_name="python3", progress_bar=False)
    doc = json.loads(out.read_text())
    errors = [o for c in doc["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    check_products(nb.name, tmp_path)


def _summary_ok(s: dict, n_tasks: int):
    if "n_tasks" in s:  # notebook 05 keeps only the headline figures
        assert s["n_tasks"] == n_tasks
    assert 0.0 <= s["valid_render_rate"] <= 1.0
    assert s["critic_score_mean"] is None or 0.0 <= s["critic_score_mean"] <= 100.0


def check_products(name: str, tmp: Path):
    """What a notebook leaves behind for the README and the next notebook, not just that it ran."""
    if name == "05_grpo_training.ipynb":
        run = tmp / "run"
        res = json.loads((run / "results.json").read_text())
        assert res["config"] == "smoke" and res["eval_tasks"] == 3
        for phase in ("before", "after"):
            assert set(res[phase]) == {"base", "self-edit"}
            for s in res[phase].values():
                _summary_ok(s, 3)
        metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1, 2]                  # smoke: train.steps 2, one line per GRPO step
        assert (run / "curves.png").stat().st_size > 0 and (run / "policy").is_dir()
        assert (run / "step_time.png").stat().st_size > 0
        for tag in ("before", "after"):
            for mode in ("base", "self-edit"):
                assert len((run / f"eval_{tag}_{mode}.jsonl").read_text().splitlines()) == 3
        assert len(res["gaps"]) == 4                                   # paired over the 3 tasks, with a verdict
        for g in res["gaps"].values():
            assert g["n"] == 3 and g["verdict"] in ("held", "did NOT hold", "inconclusive")
    elif name == "07_evaluation_and_ablations.ipynb":
        res = json.loads((tmp / "ablations" / "results.json").read_text())
        assert set(res["results"]) == {"warm_start", "full", "text_critic"}
        for s in res["results"].values():
            _summary_ok(s, 3)
        assert set(res["modes"]) == {"base", "self-edit", "critic"}
        assert {"rl_valid", "rl_score", "vision", "self_edit", "critic_loop"} <= set(res["verdicts"])
        for v in res["verdicts"].values():
            assert v["verdict"] in ("held", "did NOT hold", "inconclusive") and v["n"] == 3 and v["se"] >= 0
            assert v["ci_low"] <= v["gap"] <= v["ci_high"] or v["se"] != v["se"]   # NaN only without spread
        assert res["seeds"] == [0, 1] and set(res["results_per_seed"]["full"]) == {"0", "1"}
        # one eval file per variant and seed, each record carrying its seed
        recs = [json.loads(x) for x in (tmp / "ablations" / "eval_full_s1.jsonl").read_text().splitlines()]
        assert len(recs) == 3 and {r["seed"] for r in recs} == {1}
    elif name == "08_chain_explorer.ipynb":
        assert (tmp / "explore" / "gallery.html").stat().st_size > 0
        assert list((tmp / "explore" / "chains").rglob("chains.jsonl"))
