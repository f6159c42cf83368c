"""The chain explorer (ipywidgets, driven headlessly) and the static gallery (checked in a real browser)."""
import asyncio
import json
import os
from pathlib import Path

import pytest
from scripted import BLANK, GOOD, ONE_FLAW, TASK, ScriptedPolicy

from relook import viz
from relook.config import RolloutConfig
from relook.render import find_chromium
from relook.rollout import Environment, run_episodes


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    pol = ScriptedPolicy([ONE_FLAW, ONE_FLAW, BLANK, GOOD, GOOD])
    cfg = RolloutConfig(max_turns=3, max_resamples=2, max_new_tokens=2000, max_completion_length=6000)
    run_episodes(pol, [TASK, TASK], Environment("checklist"), cfg, record_dir=d / "chains" / "step00000",
                 ids=["ep-a", "ep-b"])
    return d


def test_code_diff_shows_the_change():
    d = viz.code_diff("<p>a</p>\n<p>b</p>", "<p>a</p>\n<p>c</p>")
    assert "-<p>b</p>" in d and "+<p>c</p>" in d


def test_explorer_follows_the_controls(run_dir):
    ex = viz.ChainExplorer(run_dir)
    assert ex.task.options == (TASK.id,) and len(ex.traj.options) == 2
    rec = ex.record
    assert ex.turn.max == len(rec["turns"]) - 1
    first = rec["turns"][0]
    assert ex.shots[0].value == open(first["shots"][0], "rb").read()
    assert [w.width for w in ex.shots] == ["300"] * 3                     # thumbnails first
    ex.size.value = 0                                                     # full size: the PNG's own 1280 px
    assert all(w.width == "" and w.layout.max_width == "none" for w in ex.shots)
    ex.size.value = 640
    assert all(w.width == "640" and w.layout.max_width is None for w in ex.shots)
    assert "ADMITTED" in ex.info.value
    # the trajectory with a rejected resample; step to it: the view follows
    ex.traj.value = next(i for i, e in enumerate(ex.by_task[TASK.id]) if not all(t["admitted"] for t in e["turns"]))
    rec = ex.record
    j = next(i for i, t in enumerate(rec["turns"]) if not t["admitted"])
    ex.turn.value = j
    assert "rejected" in ex.info.value and (rec["turns"][j]["turn"], rec["turns"][j]["attempt"]) == (1, 0)
    assert "turn 1 ·" in ex.info.value                                   # not "turn 1.0", which reads as a number
    assert rec["turns"][j]["feedback"].split("\n")[0][:30] in ex.feedback.value.replace("&quot;", '"').replace("&#x27;", "'")
    # an admitted revision shows a diff against the turn it revised
    k = next(i for i, t in enumerate(rec["turns"]) if t["admitted"] and t["turn"] > 0)
    ex.turn.value = k
    assert "code diff" in ex.diff.value and "@@" in ex.diff.value
    assert (rec["turns"][k]["turn"], rec["turns"][k]["attempt"]) == (1, 1) and "turn 1, resample 1 ·" in ex.info.value
    # the other trajectory: back to its first turn
    ex.traj.value = 1 - ex.traj.value
    assert ex.turn.value == 0 and ex.record["id"] != rec["id"]


def test_gallery_is_self_contained_and_loads_in_a_browser(run_dir, tmp_path):
    out = viz.write_gallery(run_dir, tmp_path / "gallery.html")
    html = open(out).read()
    assert "data:image/png;base64," in html and "src='/" not in html
    from playwright.async_api import async_playwright

    async def check():
        async with async_playwright() as p:
            b = await p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox", "--disable-gpu"])
            page = await b.new_page()
            errors, requests = [], []
            page.on("console", lambda m: m.type == "error" and errors.append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(f"file://{out}")
            imgs = await page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
            width = "document.images[0].clientWidth"           # the border aside
            widths = [await page.evaluate(width)]
            await page.click(".shot label")                   # click a thumbnail: full size, click again: back
            widths.append(await page.evaluate(width))
            await page.click(".shot label")
            widths.append(await page.evaluate(width))
            links = await page.evaluate("[...document.querySelectorAll('a.full')].map(a => a.href)")
            await b.close()
            return errors, imgs, requests, widths, links

    errors, imgs, requests, widths, links = asyncio.run(check())
    assert not errors
    assert imgs and all(ok and w == 1280 for ok, w in imgs)
    assert all(u.startswith(("file:", "data:")) for u in requests)  # nothing fetched from anywhere
    assert widths == [260, 1280, 260]
    from urllib.parse import unquote, urlparse
    assert len(links) == len(imgs) and all(Path(unquote(urlparse(u).path)).is_file() for u in links)
    assert "turn 1.0" not in html and "<b>turn 1, resample 1</b>" in html


def test_recorded_shots_survive_a_moved_run_and_another_working_directory(tmp_path, monkeypatch):
    import shutil

    from PIL import Image
    monkeypatch.chdir(tmp_path)
    cfg = RolloutConfig(max_turns=2, max_resamples=0, max_new_tokens=2000, max_completion_length=6000)
    (ep,) = run_episodes(ScriptedPolicy([ONE_FLAW, GOOD]), [TASK], Environment("checklist"), cfg,
                         record_dir="run/chains")                       # a relative record dir, as notebooks pass
    assert [t.admitted for t in ep.turns] == [True, True]
    stored = json.loads((tmp_path / "run" / "chains" / "chains.jsonl").read_text())
    assert [s.split("/")[0] for t in stored["turns"] for s in t["shots"]] == ["shots"] * 6  # relative to its folder
    shutil.move(tmp_path / "run", tmp_path / "moved")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (rec,) = viz.load_chains(tmp_path / "moved")
    shots = [s for t in rec["turns"] for s in t["shots"]]
    assert len(shots) == 6 and all(Image.open(s).size == (1280, 720) for s in shots)
    html = open(viz.write_gallery(tmp_path / "moved", tmp_path / "moved" / "gallery.html")).read()
    assert html.count("data:image/png;base64,") == 6


def test_chain_records_written_before_relative_paths_still_load(run_dir, tmp_path, monkeypatch):
    rec = viz.load_chains(run_dir)[0]
    shots = rec["turns"][0]["shots"]
    monkeypatch.chdir(run_dir)
    # the old format: paths as RenderResult.save returned them, absolute or relative to the working directory
    old = {**rec, "turns": [{**rec["turns"][0], "shots": [shots[0], os.path.relpath(shots[1], run_dir)]}]}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "chains.jsonl").write_text(json.dumps(old) + "\n")
    (t,) = viz.load_chains(tmp_path / "old")[0]["turns"]
    assert Path(t["shots"][0]) == Path(shots[0]) and Path(t["shots"][1]).samefile(shots[1])
    assert Path(t["shots"][1]).is_absolute()                    # made absolute on load: the next chdir is harmless


def test_training_curves_overlay_runs_and_leave_gaps():
    import math
    import matplotlib
    matplotlib.use("Agg")
    a = [{"step": 1, "reward_mean": 0.2, "valid_render_rate": 0.5, "critic_score_mean": 30.0, "fo_admission_rate": None},
         {"step": 2, "reward_mean": 0.4, "valid_render_rate": 0.75, "critic_score_mean": 40.0, "fo_admission_rate": 0.5}]
    fig = viz.training_curves(a, label="full")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [t for _, t in viz.CURVES]
    fo = axes[[k for k, _ in viz.CURVES].index("fo_admission_rate")].lines[0].get_ydata()
    assert math.isnan(fo[0]) and fo[1] == 0.5                    # a step without the metric is a gap, not 0
    viz.training_curves(a[:1], label="no_fo", axes=axes)        # overlaid on the same panels
    assert len(axes[0].lines) == 2 and [t.get_text() for t in axes[0].get_legend().get_texts()] == ["full", "no_fo"]


def test_variant_bars():
    import matplotlib
    matplotlib.use("Agg")
    res = {"warm": {"valid_render_rate": 0.5, "critic_score_mean": 20.0},
           "full": {"valid_render_rate": 0.9, "critic_score_mean": None}}
    fig = viz.variant_bars(res, {"full": [{"step": 1, "reward_mean": 0.3}]})
    assert len(fig.axes) == 3
    assert [p.get_height() for p in fig.axes[0].patches] == [0.5, 0.9]
    assert [p.get_height() for p in fig.axes[1].patches] == [20.0, 0]    # no score (all judge failures) shows as 0
    assert len(viz.variant_bars(res).axes) == 2
    res["warm"]["seconds_per_task"], res["full"]["seconds_per_task"] = 0.2, 0.5
    fig = viz.variant_bars(res, keys=viz.BARS + (("seconds_per_task", "seconds per task"),))
    assert [ax.get_title() for ax in fig.axes] == ["ValidRenderRate", "critic score", "seconds per task"]
    assert [p.get_height() for p in fig.axes[2].patches] == [0.2, 0.5]


def test_step_time_split_stacks_the_phases_of_each_step():
    from relook import viz
    rows = [{"step": 1, "generate_s": 3.0, "render_s": 1.0, "critique_s": 0.5, "optimize_s": 2.0},
            {"step": 2, "generate_s": 4.0, "render_s": None, "critique_s": 0.5, "optimize_s": 2.5}]
    fig = viz.step_time_split(rows)
    bars = fig.axes[0].patches
    assert len(bars) == 8                                   # 4 phases x 2 steps
    tops = {}
    for b in bars:
        x = round(b.get_x() + b.get_width() / 2)
        tops[x] = max(tops.get(x, 0), b.get_y() + b.get_height())
    assert tops == {1: 6.5, 2: 7.0}                        # a missing phase counts as 0
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["generate", "render", "critique",
                                                                              "optimize"]
