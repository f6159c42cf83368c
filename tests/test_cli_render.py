"""The `relook render` contract: one JSON object, exit 0 also for invalid pages, exit 2 on bad input."""
import json
import os
import subprocess
import sys

import pytest

RELOOK = [sys.executable, "-m", "relook.cli"]


def run(*args, cwd=None):
    return subprocess.run(RELOOK + list(args), capture_output=True, text=True, timeout=120, cwd=cwd)


def test_render_json_contract(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>Hello</h1></body></html>")
    p = run("render", str(page), "--out", str(tmp_path / "out"), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert {"valid", "error", "screenshots", "elapsed_ms"} <= doc.keys()
    assert doc["valid"] is True and doc["error"] is None and isinstance(doc["elapsed_ms"], (int, float))
    assert len(doc["screenshots"]) == 3 and all(os.path.isfile(s) for s in doc["screenshots"])


def test_render_options(tmp_path):
    page = tmp_path / "p.html"
    page.write_text("<html><body><h1>Hi</h1></body></html>")
    p = run("render", str(page), "--out", str(tmp_path / "o"), "--timepoints", "0,500", "--viewport", "800x600",
            "--timeout", "3", "--json")
    doc = json.loads(p.stdout)
    assert p.returncode == 0 and len(doc["screenshots"]) == 2
    from PIL import Image
    assert Image.open(doc["screenshots"][0]).size == (800, 600)


@pytest.mark.parametrize("body,error", [("<html><body></body></html>", "blank"),
                                        ("<html><body><script>for(;;){}</script></body></html>", "timeout")])
def test_invalid_page_still_exits_zero(tmp_path, body, error):
    page = tmp_path / "bad.html"
    page.write_text(body)
    p = run("render", str(page), "--out", str(tmp_path / "o"), "--timeout", "2", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["valid"] is False and doc["error"] == error


@pytest.mark.parametrize("args", [["render", "missing.html", "--json"],
                                  ["render", "PAGE", "--timepoints", "0,abc", "--json"],
                                  ["render", "PAGE", "--timepoints", "1000,0", "--json"],
                                  ["render", "PAGE", "--viewport", "1280", "--json"],
                                  ["render", "PAGE", "--viewport", "10x10", "--json"],
                                  ["render", "PAGE", "--timeout", "zero", "--json"],
                                  ["render", "PAGE", "--bogus", "--json"],
                                  ["render", "--json"]])
def test_bad_arguments_exit_2_with_one_line(tmp_path, args):
    page = tmp_path / "p.html"
    page.write_text("<html><body>x</body></html>")
    p = run(*[str(page) if a == "PAGE" else a for a in args], cwd=tmp_path)
    assert p.returncode == 2
    assert p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("relook: error:")


def test_batch_of_replies_one_json_line_per_file_in_order(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>A page</h1></body></html>")
    reply = tmp_path / "reply.txt"
    reply.write_text("Plan: a title.\n```html\n<html><body><h1>From a reply</h1></body></html>\n```\n<get_feedback>")
    prose = tmp_path / "prose.txt"
    prose.write_text("I would build a page with a red header, but here is only my plan.")
    frag = tmp_path / "fragment.html"
    frag.write_text("<h1>no html element</h1>")
    p = run("render", str(page), str(reply), str(prose), str(frag), "--out", str(tmp_path / "o"), "--json")
    assert p.returncode == 0, p.stderr
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    assert [d["file"] for d in docs] == [str(page), str(reply), str(prose), str(frag)]
    assert docs[0]["valid"] and docs[1]["valid"]
    # what the training loop would do with these replies: no code -> invalid, no screenshots
    assert docs[2]["valid"] is False and docs[2]["error"] == "no_code" and docs[2]["screenshots"] == []
    assert docs[3]["error"] == "no_code"
    assert len({os.path.dirname(d["screenshots"][0]) for d in docs[:2]}) == 2   # one directory per file
    # --raw renders the file as it is
    p = run("render", str(frag), "--raw", "--out", str(tmp_path / "r"), "--json")
    assert json.loads(p.stdout)["valid"] is True


def test_batch_with_a_missing_file_renders_nothing(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>A page</h1></body></html>")
    p = run("render", str(page), str(tmp_path / "missing.html"), "--out", str(tmp_path / "o"), "--json")
    assert p.returncode == 2 and p.stdout == "" and "missing.html" in p.stderr
    assert not (tmp_path / "o").exists()
    p = run("render", str(page), "--concurrency", "-1", "--json")
    assert p.returncode == 2 and p.stderr.startswith("relook: error:")
