"""Pictures for notebooks: temporal screenshot strips (matplotlib). Chain viewers build on these."""
from __future__ import annotations

from typing import Sequence


def show_shots(result, title: str | None = None, width: float = 15.0, crop: tuple[int, int] | None = None):
    """The temporal screenshots of one RenderResult side by side; an invalid render says why.
    `crop=(w, h)` shows only the top-left corner, where small test pages live."""
    import matplotlib.pyplot as plt

    shots = list(range(len(result.screenshots)))
    n = max(1, len(shots))
    fig, axes = plt.subplots(1, n, figsize=(width, width / n * 0.6), squeeze=False)
    for ax in axes[0]:
        ax.axis("off")
    if not shots:
        axes[0][0].text(0.5, 0.5, f"no screenshots\n{result.error}: {result.detail}", ha="center", va="center",
                        wrap=True, fontsize=11, color="crimson")
    for ax, i in zip(axes[0], shots):
        img = result.pixels(i)
        if crop:
            img = img[: crop[1], : crop[0]]
        ax.imshow(img)
        t = result.timepoints[i] if i < len(result.timepoints) else i
        ax.set_title(f"t = {'load' if t == 0 else f'+{t / 1000:g} s'}", fontsize=10)
    status = "valid" if result.valid else f"INVALID: {result.error} ({result.detail})"
    fig.suptitle(f"{title + ' — ' if title else ''}{status}", fontsize=11,
                 color="black" if result.valid else "crimson")
    fig.tight_layout()
    return fig


def shots_grid(results: Sequence, titles: Sequence[str], crop: tuple[int, int] | None = (800, 450)):
    """One row per render: compare several pages (or several turns) at the same time points."""
    import matplotlib.pyplot as plt

    n_rows = len(results)
    n_cols = max([len(r.screenshots) for r in results] + [1])
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 2.6 * n_rows), squeeze=False)
    for row, (res, name) in enumerate(zip(results, titles)):
        for col in range(n_cols):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(res.screenshots):
                img = res.pixels(col)
                ax.imshow(img[: crop[1], : crop[0]] if crop else img)
            elif col == 0:
                ax.text(0.5, 0.5, f"{res.error}", ha="center", va="center", color="crimson")
            if row == 0 and col < len(res.timepoints):
                t = res.timepoints[col]
                ax.set_title("load" if t == 0 else f"+{t / 1000:g} s", fontsize=10)
        axes[row][0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    return fig


def critiques_grid(renders: Sequence, critiques: Sequence, titles: Sequence[str], crop=(900, 500), shots=(0, -1)):
    """One row per page: a few temporal shots, then the critic's score and feedback."""
    import textwrap

    import matplotlib.pyplot as plt

    n = len(renders)
    fig, axes = plt.subplots(n, len(shots) + 1, figsize=(4.3 * (len(shots) + 1), 2.6 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * len(shots) + [1.3]})
    for row, (res, crit, name) in enumerate(zip(renders, critiques, titles)):
        for col, s in enumerate(shots):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if res.screenshots:
                i = s % len(res.screenshots)
                ax.imshow(res.pixels(i)[: crop[1], : crop[0]])
                if row == 0:
                    t = res.timepoints[i]
                    ax.set_title("load" if t == 0 else f"+{t / 1000:g} s", fontsize=10)
            else:
                ax.text(0.5, 0.5, res.error or "no render", ha="center", va="center", color="crimson")
        axes[row][0].set_ylabel(name, fontsize=10)
        ax = axes[row][-1]
        ax.axis("off")
        score = "critic failed" if crit.score is None else f"{crit.score:.0f}/100"
        body = "\n".join(textwrap.fill(line, 58) for line in crit.feedback.splitlines()[:6])
        ax.text(0, 1, f"score {score}\n\n{body}", va="top", ha="left", fontsize=8.5, family="monospace",
                color="black" if (crit.score or 0) >= 100 else "darkred")
    fig.tight_layout()
    return fig


def fo_plot(trace, title: str = "Forced Optimization"):
    """Every sampled revision (admitted or rejected) and the monotone best-so-far curve."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    xs = list(range(len(trace.steps)))
    for x, s in zip(xs, trace.steps):
        if s.score is None:
            continue
        ax.scatter(x, s.score, marker="o" if s.admitted else "x", s=70,
                   color="seagreen" if s.admitted else "crimson", zorder=3)
        ax.annotate(f"t{s.turn}" + (f" r{s.attempt}" if s.attempt else ""), (x, s.score),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.step(xs, [b if b is not None else 0 for b in trace.best_curve()], where="post", color="black",
            label="best so far (trajectory reward)")
    ax.scatter([], [], marker="o", color="seagreen", label="admitted")
    ax.scatter([], [], marker="x", color="crimson", label="rejected (resampled)")
    ax.set_xlabel("sampled revision (t = turn, r = resample)")
    ax.set_ylabel("critic score")
    ax.set_ylim(-5, 110)
    ax.set_title(title + (" — stopped: no improvement within the resample budget" if trace.stopped_early else ""),
                 fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


CURVES = (("reward_mean", "reward (mean)"), ("valid_render_rate", "ValidRenderRate"),
          ("critic_score_mean", "critic score (final turn)"), ("mean_turns", "admitted turns per trajectory"),
          ("fo_admission_rate", "FO admission rate"))
PHASES = (("generate_s", "generate"), ("render_s", "render"), ("critique_s", "critique"), ("optimize_s", "optimize"))


def step_time_split(metrics: Sequence[dict], phases=PHASES):
    """Where each GRPO step's seconds went, stacked per step (render and critique of a batch overlap: their
    wall time is split in proportion to their summed per-page times, see relook.rollout.run_episodes)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    steps, bottom = [r["step"] for r in metrics], [0.0] * len(metrics)
    for key, name in phases:
        ys = [float(r.get(key) or 0.0) for r in metrics]
        ax.bar(steps, ys, bottom=bottom, label=name)
        bottom = [b + y for b, y in zip(bottom, ys)]
    ax.set(xlabel="step", ylabel="seconds", title="seconds per GRPO step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def training_curves(metrics: Sequence[dict], keys=CURVES, label: str | None = None, axes=None):
    """One panel per metric over GRPO steps (rows of metrics.jsonl, see relook.train.read_metrics). Pass the
    `axes` of an earlier call and a `label` to overlay several runs; a step without the metric is a gap."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
        axes = axes[0]
    steps = [r["step"] for r in metrics]
    for ax, (key, title) in zip(axes, keys):
        ys = [r.get(key) for r in metrics]
        ax.plot(steps, [y if y is not None else float("nan") for y in ys], marker=".", lw=1, label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=.3)
        if label:
            ax.legend(fontsize=8)
    fig = axes[0].figure
    fig.tight_layout()
    return fig


BARS = (("valid_render_rate", "ValidRenderRate"), ("critic_score_mean", "critic score"))


def variant_bars(results: dict, metrics: dict | None = None, keys=BARS):
    """One bar panel per key over variants or inference modes ({name: evaluate() summary}; a missing value, e.g.
    no score when every judgement failed, shows as 0), and, given {name: metrics rows}, each one's training reward."""
    import matplotlib.pyplot as plt

    names = list(results)
    n = len(keys) + bool(metrics)
    fig, axes = plt.subplots(1, n, figsize=(5.4 * n, 3.4), squeeze=False)
    axes = axes[0]
    colors = ["#1e88e5", "#43a047", "#e53935", "#8e24aa"]
    for i, (ax, (key, title)) in enumerate(zip(axes, keys)):
        ax.bar(names, [results[m].get(key) or 0 for m in names], color=colors[i % len(colors)])
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=20)
    for name, rows in (metrics or {}).items():
        training_curves(rows, keys=(("reward_mean", "training reward"),), label=name, axes=[axes[-1]])
    fig.tight_layout()
    return fig


def load_chains(path) -> list[dict]:
    """Episode records from a chains.jsonl file (or every chains.jsonl under a run directory), with absolute
    screenshot paths: they are stored relative to the file's folder (relook.rollout.write_chain_records), so a run
    directory can be moved and read from anywhere."""
    import json
    from pathlib import Path

    p = Path(path)
    files = [p] if p.is_file() else sorted(p.rglob("chains.jsonl"))
    out = []
    for f in files:
        for ln in f.read_text().splitlines():
            if ln.strip():
                rec = json.loads(ln)
                for t in rec.get("turns", []):
                    t["shots"] = [_shot_path(f.parent.absolute(), s) for s in t.get("shots") or []]
                out.append(rec)
    return out


def _shot_path(base, shot: str) -> str:
    """A recorded screenshot path made absolute: relative to the chains.jsonl folder `base`; records written before
    that held absolute paths or paths relative to the working directory of the run (the root or notebooks/)."""
    from pathlib import Path

    from relook.config import ROOT
    p = Path(shot)
    if p.is_absolute():
        return shot
    for candidate in (base / p, p.absolute(), ROOT / p, ROOT / "notebooks" / p):
        if candidate.exists():
            return str(candidate)
    return str(base / p)  # missing: shown as missing


def turn_label(turn, attempt=0) -> str:
    """"turn 1" for a round's first sample, "turn 1, resample 2" for a resample of it (never "turn 1.0", which
    reads as a number)."""
    return f"turn {int(turn)}" + (f", resample {int(attempt)}" if attempt else "")


def show_chain(record: dict, max_turns: int = 6, crop=(900, 500), code_lines: int = 0):
    """One episode as a chain: each sampled turn's three screenshots, its score, whether Forced Optimization
    admitted it, and the feedback the next revision read. `record` is a line of chains.jsonl (or
    Episode.to_record() with shots saved)."""
    import textwrap

    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    turns = record["turns"][:max_turns]
    fig, axes = plt.subplots(len(turns), 4, figsize=(17, 2.9 * len(turns)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1, 1.35]})
    for row, t in enumerate(turns):
        shots = t.get("shots") or []
        for col in range(3):
            ax = axes[row][col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(shots):
                img = np.asarray(Image.open(shots[col]).convert("RGB"))
                ax.imshow(img[: crop[1], : crop[0]])
            elif col == 0:
                ax.text(0.5, 0.5, f"no render\n({t.get('error')})", ha="center", va="center", color="crimson")
            if row == 0:
                ax.set_title(["load", "+1 s", "+2 s"][col], fontsize=10)
        mark = "ADMITTED" if t["admitted"] else "rejected"
        score = "critic failed" if t["score"] is None else f"score {t['score']:.0f}"
        axes[row][0].set_ylabel(f"{turn_label(t['turn'], t['attempt'])}\n{mark}", fontsize=10,
                                color="seagreen" if t["admitted"] else "crimson")
        ax = axes[row][3]
        ax.axis("off")
        reward = "—" if t["reward"] is None else f"{t['reward']:.2f}"
        body = "\n".join(textwrap.fill(x, 62) for x in (t.get("feedback") or "").splitlines()[:6])
        text = f"{score} · reward {reward} · {'valid' if t['valid'] else 'INVALID: ' + str(t['error'])}\n\n{body}"
        if code_lines and t.get("code"):
            text += "\n\n" + "\n".join(t["code"].splitlines()[:code_lines])
        ax.text(0, 1, text, va="top", ha="left", fontsize=8.2, family="monospace")
    fig.suptitle(f"{record.get('task_id', '')}: {textwrap.shorten(record.get('prompt', ''), 150)}\n"
                 f"trajectory reward {record.get('reward')} · stopped: {record.get('stop_reason', '')}", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------- chain explorer
def code_diff(before: str | None, after: str | None, context: int = 1) -> str:
    """Unified diff between two turns' code (what the revision changed)."""
    import difflib

    a = (before or "").splitlines()
    b = (after or "").splitlines()
    return "\n".join(difflib.unified_diff(a, b, "previous turn", "this turn", n=context, lineterm=""))


def _previous(record: dict, i: int) -> dict | None:
    """The turn a revision was written against: the last admitted turn before it."""
    for t in reversed(record["turns"][:i]):
        if t["admitted"]:
            return t
    return None


SHOT_SIZES = (("thumbnails", 300), ("large", 640), ("full size", 0))  # shot width in px; 0 = the PNG's own


class ChainExplorer:
    """ipywidgets viewer of screenshot -> feedback -> revision chains from a run directory (or chains.jsonl):
    pick a task and a trajectory, step through its sampled turns, see the three temporal shots (thumbnails, large,
    or full size: a 300 px thumbnail of a 1280 px page is unreadable), the code diff against the turn it revises,
    the feedback, the score and whether Forced Optimization admitted it."""

    def __init__(self, source):
        import ipywidgets as W

        self.chains = load_chains(source)
        if not self.chains:
            raise ValueError(f"no chains under {source}")
        self.by_task: dict[str, list[dict]] = {}
        for c in self.chains:
            self.by_task.setdefault(c["task_id"], []).append(c)
        self.task = W.Dropdown(options=sorted(self.by_task), description="task")
        self.traj = W.Dropdown(description="trajectory")
        # the slider counts sampled turns, resamples included; the info line names the turn and resample
        self.turn = W.IntSlider(min=0, max=0, description="sample")
        self.size = W.ToggleButtons(options=SHOT_SIZES, value=SHOT_SIZES[0][1], description="shots")
        self.shots = [W.Image(format="png") for _ in range(3)]
        self.info = W.HTML()
        self.feedback = W.HTML()
        self.diff = W.HTML()
        self.task.observe(self._on_task, names="value")
        self.traj.observe(self._on_traj, names="value")
        self.turn.observe(lambda _: self._show(), names="value")
        self.size.observe(self._resize, names="value")
        shots = W.Box([W.VBox([W.Label(when), img]) for when, img in zip(("load", "+1 s", "+2 s"), self.shots)],
                      layout=W.Layout(flex_flow="row wrap", overflow="auto"))  # big shots wrap, then scroll
        self.widget = W.VBox([W.HBox([self.task, self.traj]), self.turn, self.size, self.info, shots,
                              self.feedback, self.diff])
        self._resize()
        self._on_task()

    def _resize(self, *_):
        px = self.size.value
        for w in self.shots:
            w.width = str(px) if px else ""              # "": the image's own width
            w.layout.max_width = None if px else "none"  # widget CSS caps images at the output's width otherwise

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)

    @property
    def record(self) -> dict:
        return self.by_task[self.task.value][self.traj.value]

    def _on_task(self, *_):
        eps = self.by_task[self.task.value]
        self.traj.options = [(f"{e['id']} · reward {e['reward']} · {len(e['turns'])} turns", i) for i, e in enumerate(eps)]
        self.traj.value = 0
        self._on_traj()

    def _on_traj(self, *_):
        self.turn.max = len(self.record["turns"]) - 1
        self.turn.value = 0
        self._show()

    def _show(self):
        import html
        from pathlib import Path

        rec = self.record
        t = rec["turns"][self.turn.value]
        shots = t.get("shots") or []
        for i, w in enumerate(self.shots):
            w.value = Path(shots[i]).read_bytes() if i < len(shots) and Path(shots[i]).exists() else b""
        badge = ("<b style='color:seagreen'>ADMITTED</b>" if t["admitted"]
                 else "<b style='color:crimson'>rejected</b>")
        score = "critic failed" if t["score"] is None else f"{t['score']:.0f}/100"
        self.info.value = (f"<div>{html.escape(rec['prompt'])}</div><div>{turn_label(t['turn'], t['attempt'])} · "
                           f"score {score} · {badge} · {'valid' if t['valid'] else 'INVALID: ' + str(t['error'])}"
                           f" · trajectory reward {rec['reward']}</div>")
        self.feedback.value = f"<b>feedback</b><pre>{html.escape(t.get('feedback') or '')}</pre>"
        prev = _previous(rec, self.turn.value)
        diff = code_diff(prev["code"], t["code"]) if prev else (t.get("code") or t.get("text") or "")
        self.diff.value = f"<b>{'code diff' if prev else 'code'}</b><pre>{html.escape(diff)}</pre>"


def write_gallery(source, out_html, max_episodes: int = 24, title: str = "ReLook chains") -> str:
    """A self-contained static HTML gallery of the same chains (images embedded), for when widgets are not live:
    papers, static notebook exports, a browser. Picks the longest, best-rewarded trajectories first."""
    import base64
    import html
    import os
    from pathlib import Path
    from urllib.parse import quote

    out = Path(out_html)
    chains = sorted(load_chains(source), key=lambda c: (-len(c["turns"]), -(c["reward"] or 0)))[:max_episodes]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;margin:24px;color:#222} .ep{border:1px solid #ddd;border-radius:8px;"
             "padding:12px;margin:18px 0} .turn{display:flex;gap:12px;margin:10px 0;align-items:flex-start}"
             ".shot{display:inline-block;vertical-align:top;margin-right:4px} .shot input{display:none}"
             ".shot img{width:260px;border:1px solid #ccc;cursor:zoom-in;display:block}"
             ".shot input:checked+img{width:auto;max-width:none;cursor:zoom-out} .shot a{font-size:11px}"
             "pre{background:#f6f6f6;padding:6px;"
             "white-space:pre-wrap;max-width:560px;font-size:12px} .ok{color:seagreen} .no{color:crimson}"
             f"</style></head><body><h1>{html.escape(title)}</h1><p>{len(chains)} trajectories: "
             "screenshots at load, +1 s, +2 s (click one for full size; PNG opens the file); critic feedback; "
             "whether Forced Optimization admitted each turn.</p>"]
    for c in chains:
        parts.append(f"<div class='ep'><h3>{html.escape(c['task_id'])} · reward {c['reward']} · "
                     f"{html.escape(c.get('stop_reason', ''))}</h3><p>{html.escape(c['prompt'])}</p>")
        for i, t in enumerate(c["turns"]):
            # a thumbnail toggles to full size in place (a checkbox, no script); the link opens the PNG file itself
            # (relative: works while the gallery sits beside the run, as runs/<name>/gallery.html does)
            imgs = "".join(
                f"<span class='shot'><label title='click: full size'><input type='checkbox'><img alt='shot {k}' "
                f"src='data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()}'></label>"
                f"<a class='full' href='{quote(Path(os.path.relpath(p, out.parent.absolute())).as_posix())}' "
                f"target='_blank'>PNG</a></span>"
                for k, p in enumerate(t.get("shots") or []) if Path(p).exists())
            if not imgs:
                imgs = f"<em class='no'>no render ({html.escape(str(t['error']))})</em>"
            mark = "<b class='ok'>admitted</b>" if t["admitted"] else "<b class='no'>rejected</b>"
            score = "critic failed" if t["score"] is None else f"{t['score']:.0f}/100"
            prev = _previous(c, i)
            diff = code_diff(prev["code"], t["code"]) if prev else (t.get("code") or "")
            parts.append(f"<div class='turn'><div><b>{turn_label(t['turn'], t['attempt'])}</b><br>{score}<br>{mark}"
                         "</div>"
                         f"<div class='shots'>{imgs}</div><div><pre>{html.escape(t.get('feedback') or '')}</pre>"
                         f"<details><summary>code {'diff' if prev else ''}</summary><pre>{html.escape(diff)}</pre>"
                         "</details></div></div>")
        parts.append("</div>")
    parts.append("</body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(parts), encoding="utf-8")
    return str(out)
