"""relook command line. Each subcommand imports only what it needs (rendering does not load torch).

    relook render FILE [FILE ...] [--raw] [--out DIR] [--timepoints 0,1000,2000] [--viewport 1280x720] [--timeout S] --json
    relook critique --task TASK.json PAGE.html [--critic checklist|text|mllm] --json
    relook warmstart --config tiny [--set key=value ...] [--force]
    relook train --config configs/tiny.yaml [--set key=value ...] [--out runs/NAME] [--resume]
    relook train --config paper --check [--world-size 8]
    relook eval --model PATH --tasks FILE.jsonl [--mode base|self-edit|critic] [--rounds N] [--critic checklist|mllm] --json
    relook tasks [--out data/tasks] [--seed 0] [--train 300] [--eval 200] [--components 2 3]

Exit codes: 0 on success (an invalid page is a result, not an error), 2 on bad arguments or input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


class UsageError(Exception):
    """Bad arguments or input: reported on one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints the whole usage; the contract is one line
        raise UsageError(message)


def _timepoints(s: str) -> tuple[int, ...]:
    try:
        tps = tuple(int(x) for x in s.split(",") if x.strip() != "")
    except ValueError:
        raise argparse.ArgumentTypeError(f"--timepoints wants comma-separated integers (ms), got {s!r}")
    if not tps or any(t < 0 for t in tps) or list(tps) != sorted(tps):
        raise argparse.ArgumentTypeError(f"--timepoints must be non-negative and increasing, got {s!r}")
    return tps


def _viewport(s: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--viewport wants WIDTHxHEIGHT, e.g. 1280x720, got {s!r}")
    if not (64 <= w <= 4096 and 64 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"--viewport sides must be within 64..4096, got {s!r}")
    return w, h


def _positive(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {s!r}")
    return v


def _count(s: str) -> int:
    if not s.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {s!r}")
    return int(s)


def _read_page(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UsageError(f"{path}: cannot read ({e.strerror})")


# ------------------------------------------------------------------------------------------------ render
def cmd_render(args) -> int:
    from relook import render as R
    texts = [_read_page(f) for f in args.pages]  # every file is read before anything renders: exit 2 loses nothing
    cfg = R.RenderConfig(viewport=args.viewport, timepoints=args.timepoints, timeout_s=args.timeout,
                         full_page=args.full_page, cdn_mirror=not args.no_mirror)
    R.run_sync(_render_batch(R, args, texts, cfg))
    return 0


async def _render_batch(R, args, texts, cfg):
    """One renderer pool for the whole batch; results printed in the order of the files, as they finish."""
    import asyncio
    async with R.Renderer(config=cfg, concurrency=args.concurrency or None) as r:
        jobs = [asyncio.ensure_future(r.render(t, extract=not args.raw)) for t in texts]
        for f, text, job in zip(args.pages, texts, jobs):
            _report(R, args, f, text, await job)


def _report(R, args, f, text, res):
    if args.out and len(args.pages) == 1:
        out = Path(args.out)
    else:
        h = R.code_hash(res.code if res.code is not None else text)[:8]
        out = Path(args.out or Path("runs") / "render") / f"{Path(f).stem}-{h}"
    paths = res.save(out) if res.screenshots else []
    doc = {"file": f, "valid": res.valid, "error": res.error, "screenshots": paths,
           "elapsed_ms": round(res.elapsed_ms, 1), "cpu_s": res.timings.get("cpu_s"), "detail": res.detail,
           "infra": res.infra, "timepoints": res.timepoints, "page_errors": res.page_errors[:10],
           "console_errors": res.console_errors[:10], "blocked_requests": len(res.blocked_requests),
           "mirrored_requests": len(res.mirrored), "blocked": res.blocked_requests[:20],
           "mirrored": res.mirrored[:20]}
    if args.json:
        print(json.dumps(doc), flush=True)
        return
    state = "valid" if res.valid else f"INVALID ({res.error}: {res.detail})"
    print(f"{f}: {state} in {res.elapsed_ms:.0f} ms")
    for p in paths:
        print("  ", p)
    if res.mirrored:
        print(f"  served {len(res.mirrored)} request(s) from the CDN mirror, e.g. {res.mirrored[0]}")
    if res.blocked_requests:
        print(f"  refused {len(res.blocked_requests)} request(s), e.g. {res.blocked_requests[0]}")


# ------------------------------------------------------------------------------------------------ critique
def cmd_critique(args) -> int:
    from relook import render as R
    from relook.critic import CriticNotConfigured, make_critic
    from relook.tasks import TaskFormatError, load_task
    try:
        task = load_task(args.task)
    except TaskFormatError as e:
        raise UsageError(str(e))
    code = _read_page(args.page)
    if args.critic in ("checklist", "text") and not task.checkable:
        raise UsageError(f"{args.task}: some checklist items have no `check`; the {args.critic} critic needs "
                         "machine checks (use --critic mllm)")
    try:
        critic = make_critic(args.critic)
    except CriticNotConfigured as e:
        raise UsageError(str(e))
    cfg = R.RenderConfig(timeout_s=args.timeout)

    async def go():
        async with R.Renderer(config=cfg, concurrency=2) as r:
            res = await r.render(code, extract=False)
            if args.critic == "checklist":
                critic.renderer = r
            return res, await critic.critique(task, res)

    res, crit = R.run_sync(go())
    doc = {"valid": res.valid, "score": crit.score, "feedback": crit.feedback,
           "items": [{"id": it.id, "passed": it.passed} for it in crit.items],
           "error": res.error, "critic": args.critic}
    if crit.score is None:
        doc["critic_error"] = crit.error
    if args.json:
        print(json.dumps(doc))
    else:
        score = "critic failed: " + str(crit.error) if crit.score is None else f"{crit.score:g}/100"
        print(f"{args.page}: {'valid' if res.valid else 'INVALID (' + str(res.error) + ')'}, score {score}")
        for it in crit.items:
            print(f"  [{'x' if it.passed else ' '}] {it.id}: {it.description}")
        print("feedback:\n  " + crit.feedback.replace("\n", "\n  "))
    return 0


# ------------------------------------------------------------------------------------------------ config
def _config(args):
    from relook.config import ConfigError, load_config
    try:
        return load_config(args.config, args.set)
    except ConfigError as e:
        raise UsageError(str(e))


def cmd_warmstart(args) -> int:
    from relook.checkpoints import ModelSpecError
    from relook.checkpoints import warm_path
    cfg = _config(args)
    path = warm_path(cfg)
    if path is None:
        raise UsageError(f"warmstart.enabled is false: policy.model {cfg.policy.model!r} is trained as it is")
    if (path / "config.json").exists() and not args.force:
        print(f"warm-started policy already at {path} (use --force to rebuild)")
        return 0
    from relook.warmstart import warmstart
    try:
        warmstart(cfg, out=path, force=args.force)
    except ModelSpecError as e:
        raise UsageError(str(e))
    print(path)
    return 0


def cmd_train(args) -> int:
    from relook.config import ConfigError
    cfg = _config(args)
    # a directory typed on the command line is relative to the user's working directory; the config's own out_dir
    # (and the default runs/<name>) to the repository root (Config.run_dir)
    if args.out:
        cfg.out_dir = os.path.abspath(args.out)
        cfg.name = cfg.name if cfg.name != "default" else Path(cfg.out_dir).name
    elif cfg.out_dir and any(s.split("=", 1)[0].strip() == "out_dir" for s in args.set):
        cfg.out_dir = os.path.abspath(cfg.out_dir)
    if args.world_size is not None and not args.check:
        raise UsageError("--world-size goes with --check (a launcher sets the number of processes of a real run)")
    try:
        if args.check:
            from relook.train import check
            print(check(cfg, args.world_size))
            return 0
        from relook.checkpoints import ModelSpecError
        from relook.train import train
        try:
            train(cfg, resume=args.resume)
        except ModelSpecError as e:
            raise UsageError(str(e))
    except ConfigError as e:
        raise UsageError(str(e))
    return 0


def _world_size(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def cmd_eval(args) -> int:
    import dataclasses

    from relook.config import load_config, project_path
    from relook.critic import CriticNotConfigured
    from relook.checkpoints import ModelSpecError
    from relook.evaluate import evaluate
    from relook.warmstart import policy_from_spec
    from relook.protocol import ProtocolError
    from relook.rollout import make_environment
    from relook.tasks import TaskFormatError, load_any
    try:
        tasks = load_any(args.tasks)
    except TaskFormatError as e:
        raise UsageError(str(e))
    if not tasks:
        raise UsageError(f"{args.tasks}: no tasks")
    if args.n:
        tasks = tasks[: args.n]
    if args.critic == "checklist" and not all(t.checkable for t in tasks):
        raise UsageError(f"{args.tasks}: these tasks have no machine checks (ArtifactsBench / WebGen-Bench style); "
                         "they need the MLLM critic: --critic mllm with RELOOK_CRITIC_BASE_URL set")
    cfg = load_config(None, [f"rollout.critic={args.critic}"])
    # ArtifactsBench files are judged with the benchmark's own protocol (relook.artifactsbench)
    protocol = "artifactsbench" if tasks[0].meta.get("source") == "artifactsbench" else "relook"
    try:
        env = make_environment(cfg, protocol=protocol)
    except CriticNotConfigured as e:
        raise UsageError(str(e))
    try:
        policy = policy_from_spec(args.model, cfg if args.model else None)
    except (ModelSpecError, ProtocolError) as e:
        raise UsageError(str(e))
    rollout = dataclasses.replace(cfg.rollout, max_new_tokens=args.max_new_tokens)
    name = Path(args.model).name if args.model else "tiny"
    # --out: relative to the user's working directory; the default, like train's, under the repository's runs/
    out = os.path.abspath(args.out) if args.out else str(project_path(f"runs/eval/{name}-{args.mode}.jsonl"))
    summary = evaluate(policy, tasks, env, mode=args.mode, rounds=args.rounds, rollout_cfg=rollout, out_jsonl=out,
                       max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    summary["per_task"] = out
    if args.json:
        print(json.dumps(summary))
    else:
        print(json.dumps(summary, indent=1))
    return 0


def cmd_tasks(args) -> int:
    from relook.synth import write_splits
    try:  # validated before a file is written
        paths = write_splits(args.out, seed=args.seed, n_train=args.train, n_eval=args.eval,
                             components=tuple(args.components))
    except ValueError as e:
        raise UsageError(f"--components: {e}")
    for p in paths:
        print(p)
    return 0


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="relook", description="ReLook reproducibility kit")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    r = sub.add_parser("render", help="render pages or model replies: three temporal screenshots, sandboxed")
    r.add_argument("pages", nargs="+", metavar="FILE", help="model replies (the page is extracted as in training) "
                   "or, with --raw, HTML pages")
    r.add_argument("--raw", action="store_true", help="render each file as a page, as it is (no extraction)")
    r.add_argument("--out", help="directory for the PNGs (default runs/render/<file>-<hash>; several files: one "
                   "sub-directory each)")
    r.add_argument("--timepoints", type=_timepoints, default=(0, 1000, 2000), help="ms after load, e.g. 0,1000,2000")
    r.add_argument("--viewport", type=_viewport, default=(1280, 720), help="WIDTHxHEIGHT")
    r.add_argument("--timeout", type=_positive, default=5.0, help="the page's budget in CPU seconds (its share "
                   "of the browser's CPU: a busy machine does not eat it)")
    r.add_argument("--full-page", action="store_true", help="capture the whole page height (clipped at 4000 px)")
    r.add_argument("--no-mirror", action="store_true", help="refuse CDN libraries too (no offline mirror)")
    r.add_argument("--concurrency", type=_count, default=0, help="renders at a time (default two per core)")
    r.add_argument("--json", action="store_true", help="one JSON object per file, one per line")
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("critique", help="score a page against a task's checklist")
    c.add_argument("page", help="HTML file")
    c.add_argument("--task", required=True, help="JSON file with one task object")
    c.add_argument("--critic", choices=("checklist", "text", "mllm"), default="checklist")
    c.add_argument("--timeout", type=_positive, default=5.0, help="render budget in seconds")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_critique)

    w = sub.add_parser("warmstart", help="warm-start the policy a config names: the tiny one, or a real checkpoint "
                       "when warmstart.enabled (cached; reused when present)")
    w.add_argument("--config", default="tiny", help="config name (configs/NAME.yaml) or path")
    w.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    w.add_argument("--force", action="store_true", help="rebuild even if a cached policy exists")
    w.set_defaults(func=cmd_warmstart)

    t = sub.add_parser("train", help="GRPO training on TRL (runs/<name>: metrics.jsonl, chains, checkpoints)")
    t.add_argument("--config", required=True, help="config name or path, e.g. configs/tiny.yaml")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    t.add_argument("--out", help="run directory, relative to the current directory (default: the repository's "
                   "runs/<config name>)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run directory "
                   "(a run that finished its steps: nothing to do)")
    t.add_argument("--check", action="store_true", help="validate the config and build TRL's training arguments "
                   "for --world-size processes; load no model, train nothing, write nothing")
    t.add_argument("--world-size", type=_world_size, default=None, metavar="N",
                   help="with --check: the number of processes to check for (default: $WORLD_SIZE, else 1)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="answer a task set in one inference mode and judge the answers")
    e.add_argument("--model", required=True, help="a saved policy or HF directory (e.g. runs/tiny/policy), a .gguf "
                   "file, smollm2-135m-instruct (the packaged SmolLM2), or '' (the tiny config's warm start)")
    e.add_argument("--tasks", required=True, help="our JSONL, or an ArtifactsBench / WebGen-Bench file")
    e.add_argument("--mode", choices=("base", "self-edit", "critic"), default="base")
    e.add_argument("--rounds", type=int, default=3, help="revision rounds (self-edit, critic)")
    e.add_argument("--critic", choices=("checklist", "mllm"), default="checklist")
    e.add_argument("--n", type=int, default=0, help="only the first N tasks")
    e.add_argument("--max-new-tokens", type=int, default=400)
    e.add_argument("--temperature", type=_positive, default=1.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", help="per-task JSONL, relative to the current directory (default: the repository's "
                   "runs/eval/<model>-<mode>.jsonl)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    k = sub.add_parser("tasks", help="write the synthetic train/eval task splits")
    k.add_argument("--out", default="data/tasks")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--train", type=int, default=300)
    k.add_argument("--eval", type=int, default=200)
    k.add_argument("--components", type=int, nargs=2, default=(2, 3), metavar=("FEWEST", "MOST"),
                   help="components per task (each brings 2-3 checklist items)")
    k.set_defaults(func=cmd_tasks)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"relook: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
