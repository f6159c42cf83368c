"""The `relook critique` contract."""
import json
import subprocess
import sys

import pytest

from relook import synth

RELOOK = [sys.executable, "-m", "relook.cli"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("crit")
    task = synth.generate_tasks(1, seed=21)[0]
    (d / "task.json").write_text(json.dumps(task.to_dict()))
    (d / "good.html").write_text(task.reference_html)
    (d / "empty.html").write_text("<html><body></body></html>")
    (d / "other.html").write_text("<html><body><h1>Something else</h1></body></html>")
    return d, task


def run(*args):
    return subprocess.run(RELOOK + [str(a) for a in args], capture_output=True, text=True, timeout=120)


def test_critique_json_contract(files):
    d, task = files
    p = run("critique", "--task", d / "task.json", d / "good.html", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["valid"] is True and doc["score"] == 100.0 and isinstance(doc["feedback"], str)
    assert [it["id"] for it in doc["items"]] == [it.id for it in task.checklist]
    assert all(set(it) == {"id", "passed"} and it["passed"] for it in doc["items"])


def test_critique_flawed_and_blank(files):
    d, _ = files
    doc = json.loads(run("critique", "--task", d / "task.json", d / "other.html", "--json").stdout)
    assert doc["valid"] and doc["score"] < 50 and doc["feedback"]
    doc = json.loads(run("critique", "--task", d / "task.json", d / "empty.html", "--json").stdout)
    assert doc["valid"] is False and doc["score"] == 0


def test_critique_text_only(files):
    d, _ = files
    p = run("critique", "--task", d / "task.json", d / "good.html", "--critic", "text", "--json")
    doc = json.loads(p.stdout)
    assert p.returncode == 0 and 0 <= doc["score"] < 100  # layout/pixel/click items are unknown to it


@pytest.mark.parametrize("content,fragment", [
    ("{not json", "not valid JSON"),
    (json.dumps({"id": "x"}), "field 'prompt': missing"),
    (json.dumps({"id": "x", "prompt": "p", "checklist": [{"description": "d", "check": {"kind": "exists"}}]}),
     "checklist[0]'.check.selector: missing"),
])
def test_bad_task_file_exits_2(files, tmp_path, content, fragment):
    d, _ = files
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    p = run("critique", "--task", bad, d / "good.html", "--json")
    assert p.returncode == 2 and fragment in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_missing_files_and_unconfigured_mllm(files, monkeypatch):
    d, _ = files
    assert run("critique", "--task", d / "nope.json", d / "good.html").returncode == 2
    assert run("critique", "--task", d / "task.json", d / "nope.html").returncode == 2
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RELOOK_CRITIC_"))}
    p = subprocess.run(RELOOK + ["critique", "--task", str(d / "task.json"), str(d / "good.html"), "--critic", "mllm"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 2 and "no MLLM endpoint configured" in p.stderr
