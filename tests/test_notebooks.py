"""Every notebook runs (papermill, small parameters) and is committed without outputs."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# Small parameters so the whole suite stays well inside CI's budget.
PARAMS = {
    "01_rendering.ipynb": {"timeout_s": 5.0},
    "02_critic.ipynb": {"timeout_s": 5.0},
    "03_reward_and_forced_optimization.ipynb": {"timeout_s": 3.0, "max_resamples": 10},
}


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ is empty"


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
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(nb, tmp_path):
    import papermill as pm
    out = tmp_path / nb.name
    pm.execute_notebook(str(nb), str(out), parameters=PARAMS.get(nb.name, {}), cwd=str(nb.parent),
                        kernel_name="python3", progress_bar=False)
    doc = json.loads(out.read_text())
    errors = [o for c in doc["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
