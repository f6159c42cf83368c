"""Critics: look at a render, return a score (0-100) and concrete feedback. One protocol, three critics.

    critique = await critic.critique(task, render)      # async; critique_many batches; critique_sync for scripts

* ChecklistCritic (relook.checklist; offline default, vision-grounded): each checklist item's machine check run
  against the rendered page — screenshot pixels for `color` and `animates`, DOM boxes and computed styles for the
  rest, real clicks for `click`. Score = weighted share of passed items x 100. Page text cannot raise it:
  nothing the page says is read as a verdict.
* MLLMCritic (relook.mllm): the paper's critic, a multimodal LLM over any OpenAI-compatible endpoint.
* TextOnlyCritic (relook.text_critic): the paper's "no vision" ablation — sees the code only; anything that needs
  layout, pixels, time or clicks is unknown, hence failed.
The protocol lives in relook.critique, colors and pixels in relook.colors; this module is the public face.
A critic failure (an unparsable judge reply after retries) is score=None, never a silent 0.
"""
from __future__ import annotations

from relook.checklist import ChecklistCritic, merge_feedback, position_holds
from relook.colors import (color_distance, color_hex, color_name, describe_color, parse_color, parse_rgba,
                           region_color)
from relook.critique import Critic, Critique, ItemResult, not_rendered
from relook.mllm import JUDGE_SYSTEM, CriticNotConfigured, MLLMCritic, build_judge_messages, parse_judge_reply
from relook.text_critic import TextOnlyCritic

__all__ = ["ItemResult", "Critique", "Critic", "not_rendered",
           "parse_rgba", "parse_color", "color_hex", "color_name", "color_distance", "describe_color", "region_color",
           "ChecklistCritic", "merge_feedback", "position_holds", "TextOnlyCritic",
           "JUDGE_SYSTEM", "build_judge_messages", "parse_judge_reply", "CriticNotConfigured", "MLLMCritic",
           "CRITICS", "make_critic"]

CRITICS = {"checklist": ChecklistCritic, "text": TextOnlyCritic, "mllm": MLLMCritic}


def make_critic(kind: str = "checklist", **kw) -> Critic:
    if kind not in CRITICS:
        raise ValueError(f"unknown critic {kind!r} (expected one of {', '.join(CRITICS)})")
    return CRITICS[kind](**kw)
