"""Warm start (the kit's cold-start SFT): demonstrations of the ReLook turn protocol, then supervised training.

Demonstrations come from the synthetic world (relook.synth): a first attempt that is often imperfect — no code,
a blank page, a page cut off mid-way, or a page with the mistakes the critic names — then the real critic's
feedback, then revisions that fix what it names. The mix is tuned so the warm-started policy is clearly
imperfect (the paper's RL starts near 40% valid renders) and leaves room for RL. Demonstrations are text; each
policy's own chat template turns them into ids (relook.protocol), so the tiny policy and a real chat model learn
the same conversation.

    relook warmstart --config tiny          # builds tokenizer + model, trains, saves to the cache dir
    relook warmstart --config smol          # SmolLM2 + LoRA, merged into the weights and saved to the cache dir
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

from relook import synth
from relook.checkpoints import cache_root, file_lock, lora_kwargs, resolve, warm_path
from relook.config import ROOT
from relook.policy import Policy
from relook.protocol import GET_FEEDBACK, SELF_EDIT_FEEDBACK, Protocol

REVISE_PLAN = "Plan: fix what the feedback names."
SELF_EDIT_PLAN = "Plan: check the page against the task."
NO_CODE_TEXT = "I will write the page now."


FONTS = ("sans-serif", "serif", "monospace", "Georgia, serif", "Verdana, sans-serif", "'Trebuchet MS', sans-serif")
SPACINGS = (8, 12, 16, 20, 24)


def restyle(code: str | None, look: tuple[str, int] | None) -> str | None:
    """A synthetic page in another look (font family, spacing): nothing the checklist checks changes."""
    if code is None or look is None:
        return code
    font, px = look
    return code.replace("font-family:sans-serif", f"font-family:{font}").replace("margin:16px", f"margin:{px}px")


def turn_text(plan: str, code: str | None, end: str = "", cut: bool = False) -> str:
    """One policy turn's text. `code=None` is a turn without code; `cut` leaves the fence open (a page cut off);
    `end` is appended as is (GET_FEEDBACK when a test needs the whole turn; demonstrations store none)."""
    if code is None:
        return f"{plan}\n{NO_CODE_TEXT}\n{end}"
    if cut:
        return f"{plan}\n```html\n{code}\n{end}"
    return f"{plan}\n```html\n{code}\n```\n{end}"


@dataclass
class Demo:
    task_id: str
    prompt: str
    turns: list[str]             # policy turns' text, without the end tag: every turn but the last asks for feedback
    feedback: list[str]          # environment feedback after turns[i] (len(turns) - 1 entries)
    first: str                   # kind of first attempt


def _first_attempt(spec: dict, rng: random.Random, ws) -> tuple[str, str | None, bool, dict]:
    """(kind, code, cut, flaws) for a first attempt."""
    u = rng.random()
    if u < ws.p_no_code:
        return "no_code", None, False, {}
    u -= ws.p_no_code
    if u < ws.p_blank:
        return "blank", synth.flawed_page(spec, rng, "blank"), False, {}
    u -= ws.p_blank
    if u < ws.p_broken:
        return "broken", synth.flawed_page(spec, rng, "broken"), True, {}
    if rng.random() < ws.p_perfect:
        return "perfect", synth.page_html(spec), False, {}
    flaws = _sample_flaws(spec, rng, rng.choice([1, 1, 2]))
    return "flawed", synth.flawed_page(spec, rng, flaws), False, flaws


def _sample_flaws(spec, rng, n) -> dict:
    comps = spec["components"]
    idx = rng.sample(range(len(comps)), min(n, len(comps)))
    return {i: rng.choice(synth.COMPONENTS[comps[i]["kind"]].flaws) for i in idx}


def _named(spec: dict, critique) -> set[int]:
    """Components whose checklist items the critic failed: what its feedback names."""
    failed = {it.id for it in (critique.items if critique is not None else []) if not it.passed}
    return {i for i, c in enumerate(spec["components"])
            if any(iid in failed for iid, _, _ in synth.COMPONENTS[c["kind"]].items(synth._params(c)))}


def _revision(spec: dict, rng: random.Random, ws, prev: str, flaws: dict, named: set[int] | None
              ) -> tuple[str, str | None, bool, dict]:
    """(kind, code, cut, flaws) of a revision of an attempt (`prev`: its kind, `flaws`: its component flaws).
    With feedback (`named`: the components it names) each named flaw is fixed with p_fix and nothing else
    changes; without (self-edit, `named=None`) the policy has only the task and its own page, so a flaw is fixed
    with the lower p_self_fix. Either way a revision may break the page (p_revision_invalid) or slip a new
    flaw into a part that was right (p_revision_flawed): a weak policy's revision, not the reference page."""
    if rng.random() < ws.p_revision_invalid:
        kind = rng.choice(["blank", "broken"])
        return kind, synth.flawed_page(spec, rng, kind), kind == "broken", {}
    p = ws.p_fix if named is not None else ws.p_self_fix
    if prev in synth.PAGE_FLAWS:  # no page, a blank one, one cut off: write it again, with typical mistakes
        if rng.random() >= p:
            return prev, synth.flawed_page(spec, rng, prev), prev == "broken", {}
        left = _sample_flaws(spec, rng, rng.choice([0, 1, 1, 2]))
    else:
        left = {i: f for i, f in flaws.items() if not ((named is None or i in named) and rng.random() < p)}
    if rng.random() < ws.p_revision_flawed:
        fresh = [i for i in range(len(spec["components"])) if i not in left and i not in flaws]
        if fresh:
            i = rng.choice(fresh)
            left[i] = rng.choice(synth.COMPONENTS[spec["components"][i]["kind"]].flaws)
    if not left:
        return "perfect", synth.page_html(spec), False, {}
    return "flawed", synth.flawed_page(spec, rng, left), False, left


def make_demos(tasks, ws, env, seed: int = 0) -> list[Demo]:
    """Build demonstrations turn by turn: each attempt is rendered and judged by the real environment, and the
    next attempt revises what that judgement names (a self-edit demo gets no judgement: it revises blind). A demo
    ends once an attempt is perfect, or after `max_demo_turns`."""
    rng = random.Random(seed)
    live = []  # [task, spec, [(plan, code, cut)], [feedback], first kind, self_edit, (kind, flaws) of the last, look]
    for t in tasks:
        spec = t.meta["spec"]
        for _ in range(ws.demos_per_task):
            kind, code, cut, flaws = _first_attempt(spec, rng, ws)
            look = (rng.choice(FONTS), rng.choice(SPACINGS)) if ws.vary_style else None
            live.append([t, spec, [(synth.plan_text(spec), restyle(code, look), cut)], [], kind,
                         rng.random() < ws.p_self_edit, (kind, flaws), look])
    done = []
    while live:
        going = [d for d in live if d[6][0] != "perfect" and len(d[2]) < ws.max_demo_turns]
        done += [d for d in live if not (d[6][0] != "perfect" and len(d[2]) < ws.max_demo_turns)]
        if not going:
            break
        judged = [d for d in going if not d[5]]
        results = env.step_many_sync([d[0] for d in judged], [turn_text(*d[2][-1][:2], GET_FEEDBACK, d[2][-1][2])
                                                              for d in judged]) if judged else []
        verdict = {id(d): r for d, r in zip(judged, results)}
        for d in going:
            r = verdict.get(id(d))
            d[3].append(SELF_EDIT_FEEDBACK if r is None else r.feedback)
            named = None if r is None else _named(d[1], r.critique)
            kind, code, cut, flaws = _revision(d[1], rng, ws, d[6][0], d[6][1], named)
            d[2].append((SELF_EDIT_PLAN if d[5] else REVISE_PLAN, restyle(code, d[7]), cut))
            d[6] = (kind, flaws)
        live = going
    return [Demo(t.id, t.prompt, [turn_text(p, c, "", cut) for p, c, cut in atts], fbs, kind)
            for t, _, atts, fbs, kind, _, _, _ in done]


def load_or_make_demos(cfg, tasks, cache_dir: Path) -> list[Demo]:
    """Demonstrations are the slow part (every attempt is rendered and judged): cached by what shapes them."""
    from dataclasses import asdict

    from relook.config import config_hash
    from relook.critic import ChecklistCritic
    from relook.rollout import make_environment
    ws = cfg.warmstart
    training_only = ("epochs", "lr", "batch_size", "grad_accum", "max_length", "enabled", "always_ask")
    key = config_hash({"tasks": [t.to_dict() for t in tasks], "ws": {k: v for k, v in asdict(ws).items()
                       if k not in training_only},
                       "render": asdict(cfg.render), "version": 3})
    path = Path(cache_dir) / f"demos-{key}.jsonl"
    if path.exists():
        return [Demo(**json.loads(ln)) for ln in path.read_text().splitlines() if ln.strip()]
    env = make_environment(cfg)
    env.critic = ChecklistCritic()  # demonstrations always carry the offline critic's feedback
    demos = make_demos(tasks, ws, env, seed=ws.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(asdict(d)) + "\n" for d in demos))
    tmp.replace(path)
    return demos


def encode_demo(protocol: Protocol, demo: Demo, max_fb_tokens: int = 96, ask_last: bool = False):
    """input_ids and labels: the loss sees policy turns only (prompt and feedback blocks are -100). `ask_last`
    (warmstart.always_ask): the last turn asks for feedback too instead of ending the conversation."""
    ids = protocol.prompt_ids(demo.prompt)
    labels = [-100] * len(ids)
    for i, turn in enumerate(demo.turns):
        t_ids = protocol.turn_ids(turn, ask=i < len(demo.feedback) or ask_last)
        ids += t_ids
        labels += t_ids
        if i < len(demo.feedback):
            fb = protocol.feedback_ids(demo.feedback[i], max_fb_tokens)
            ids += fb
            labels += [-100] * len(fb)
    return ids, labels


def corpus(demos, tasks):
    for d in demos:
        yield d.prompt
        yield from d.turns
        yield from d.feedback
    for t in tasks:
        yield t.reference_html


def _text_progress(log):
    """In a notebook the Trainer draws an HTML progress table, which papermill's --log-output cannot carry to a
    console; one text line per log keeps a batch run (make train) visibly alive."""
    from transformers import TrainerCallback

    class TextProgress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                log(f"warmstart: step {state.global_step}/{state.max_steps} loss {logs['loss']:.3f}")
    return TextProgress()


def warmstart(cfg, out: str | Path | None = None, log=print, force: bool = False) -> Path:
    """Warm-start the policy `cfg` names and save it (model + tokenizer) to its cache path: the kit's tiny policy
    is built from scratch; a real checkpoint is fine-tuned (LoRA when policy.lora, merged into the weights so GRPO
    can put a fresh adapter on top and keep the warm start as its KL reference)."""

    out = Path(out) if out else warm_path(cfg)
    # two processes (a notebook and a training run, two ranks) asking for the same warm start: one builds it
    with file_lock(out.with_name(out.name + ".lock")):
        if not force and (out / "config.json").exists() and (out / "warmstart.json").exists():
            log(f"warmstart: {out} was built by another process")
            return out
        return _warmstart(cfg, out, log)


def _warmstart(cfg, out: Path, log) -> Path:
    import shutil

    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    from relook.policy import build_model, build_tokenizer
    from relook.tasks import load_tasks

    ws = cfg.warmstart
    torch.manual_seed(ws.seed)
    t0 = time.time()
    tasks = [t for t in load_tasks(cfg.resolve(ws.tasks)) if "spec" in t.meta][: ws.n_tasks or None]
    if not tasks:
        raise ValueError(f"{ws.tasks}: warm start needs synthetic tasks (with meta.spec)")
    demos = load_or_make_demos(cfg, tasks, out.parent)
    log(f"warmstart: {len(demos)} demonstrations from {len(tasks)} tasks in {time.time() - t0:.0f}s")
    if cfg.policy.model:
        base = resolve(cfg.policy.model, cache_root(cfg))
        policy = Policy.from_pretrained(str(base), device="cpu", dtype=cfg.policy.dtype,
                                        lora=lora_kwargs(cfg) if cfg.policy.lora else None)
        tok, model = policy.tokenizer, policy.model
        tok.padding_side = "right"
    else:
        tok = build_tokenizer(corpus(demos, tasks), cfg.policy.vocab_size)
        model = build_model(tok, cfg.policy)
    protocol = Protocol(tok)
    rows = []
    for d in demos:
        ids, labels = encode_demo(protocol, d, cfg.rollout.max_feedback_tokens, ask_last=ws.always_ask)
        if len(ids) <= ws.max_length:
            rows.append({"input_ids": ids, "labels": labels, "length": len(ids)})
    if not rows:
        raise ValueError(f"warmstart.max_length {ws.max_length}: every demonstration is longer; raise it")
    n_tok = sum(len(r["input_ids"]) for r in rows)
    log(f"warmstart: {len(rows)} of {len(demos)} sequences fit max_length {ws.max_length}, {n_tok} tokens, "
        f"vocab {len(tok)}")
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"warmstart: model {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
        f"{n_train / 1e6:.2f}M trained")
    pad = tok.pad_token_id

    def collate(batch):
        n = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), n), pad)
        lab = torch.full((len(batch), n), -100)
        att = torch.zeros((len(batch), n), dtype=torch.long)
        for i, b in enumerate(batch):
            k = len(b["input_ids"])
            ids[i, :k] = torch.tensor(b["input_ids"])
            lab[i, :k] = torch.tensor(b["labels"])
            att[i, :k] = 1
        return {"input_ids": ids, "labels": lab, "attention_mask": att}

    args = TrainingArguments(output_dir=str(out) + ".tmp", num_train_epochs=ws.epochs,
                             per_device_train_batch_size=ws.batch_size, learning_rate=ws.lr,
                             gradient_accumulation_steps=ws.grad_accum,
                             lr_scheduler_type="cosine", warmup_steps=0.05, weight_decay=0.0,
                             logging_steps=max(1, min(20, len(rows) // (ws.batch_size * ws.grad_accum) // 4)),
                             save_strategy="no", report_to=[], seed=ws.seed, data_seed=ws.seed,
                             dataloader_num_workers=0, remove_unused_columns=False,
                             train_sampling_strategy="group_by_length",  # less padding: ~1.5x faster on CPU
                             disable_tqdm=False, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collate)
    from transformers.utils import is_in_notebook
    if is_in_notebook():
        trainer.add_callback(_text_progress(log))
    result = trainer.train()
    if hasattr(model, "merge_and_unload"):  # a LoRA warm start becomes plain weights (see the docstring)
        model = model.merge_and_unload()
    tmp = Path(str(out) + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.padding_side = "left"
    tok.save_pretrained(tmp)
    meta = {"demos": len(demos), "sequences": len(rows), "tokens": n_tok, "train_loss": result.training_loss,
            "seconds": time.time() - t0, "first_attempts": _counts(d.first for d in demos), "config": cfg.to_dict()}
    (tmp / "warmstart.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)  # complete or absent: a killed warm start leaves no half-written policy behind
    shutil.rmtree(str(out) + ".tmp", ignore_errors=True)
    log(f"warmstart: saved to {out} (loss {result.training_loss:.3f}, {time.time() - t0:.0f}s)")
    return out


def _counts(xs):
    out = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


# ------------------------------------------------------------------------------------------- loading
def load_policy(cfg, build: bool = True) -> Policy:
    """The policy a config names, warm-started when the config asks for it (built and cached on first use, as
    `relook warmstart` does), with a fresh LoRA adapter when policy.lora."""
    path = warm_path(cfg)
    if path is None:
        path = resolve(cfg.policy.model, cache_root(cfg))
    elif not (path / "config.json").exists():
        if not build:
            raise FileNotFoundError(f"no warm-started policy at {path}: run `relook warmstart --config {cfg.name}`")
        warmstart(cfg)
    return Policy.from_pretrained(str(path), device=cfg.policy.device, dtype=cfg.policy.dtype,
                                  lora=lora_kwargs(cfg) if cfg.policy.lora else None, sampler=cfg.policy.sampler)


def policy_from_spec(spec: str, cfg=None, device: str = "auto", dtype: str = "float32") -> Policy:
    """`relook eval --model`: "" (the default config's tiny policy), a saved policy or HF directory, a .gguf
    file, or a short name (relook.checkpoints.SHORT_NAMES). Raises ModelSpecError naming a bad spec."""
    if not spec:
        from relook.config import load_config
        return load_policy(cfg or load_config("tiny"))
    return Policy.from_pretrained(str(resolve(spec, cache_root(cfg) if cfg else ROOT / ".cache/relook")),
                                  device=device, dtype=dtype, sampler=cfg.policy.sampler if cfg else "auto")
