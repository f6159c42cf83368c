"""The ReLook turn protocol: what the policy reads and writes, identical in warm start, training and inference.

A conversation is a chat in the tokenizer's own template: system (this protocol), user (the task), then policy
turns. A policy turn is a plan and one ```html block, ended by one of

    <get_feedback>            the policy asks for a critique: the environment answers as the next user message,
                              <mllm_feedback> ... </mllm_feedback>, and the policy revises;
    its own end-of-turn token the page is finished (<|im_end|>, <|eot_id|>, ... or the tiny policy's <|eos|>).

Token ids are built piece by piece from the template (`Protocol`), never by re-tokenizing a whole conversation, so
the ids a rollout trains on are the ids the warm start taught and inference samples from. Between two policy
turns the environment inserts, with env_mask 0 (no gradient: the policy did not write them):

    [close of the assistant turn] [user header] <mllm_feedback> body </mllm_feedback> [end] [assistant header]

The tiny policy's template renders no system message: it learnt the protocol from demonstrations alone, and a
long system prompt would triple its sequence length.
"""
from __future__ import annotations

# cached warm starts are keyed by it: bump when what a policy reads or writes changes
PROTOCOL_VERSION = 2

GET_FEEDBACK = "<get_feedback>"
FEEDBACK_OPEN = "<mllm_feedback>"
FEEDBACK_CLOSE = "</mllm_feedback>"
TURN_TAGS = (GET_FEEDBACK, FEEDBACK_OPEN, FEEDBACK_CLOSE)

SYSTEM_PROMPT = (
    "You write single-file web pages. Answer with a short plan, then the complete page in one ```html code block "
    "(HTML with inline CSS and JavaScript; no external files). After the code block, either write "
    f"{GET_FEEDBACK} to have the page rendered and reviewed, or end your turn if the page is finished. A reviewer "
    "looks at screenshots taken at load, +1 s and +2 s and answers inside "
    f"{FEEDBACK_OPEN}...{FEEDBACK_CLOSE}. Then write a new plan and the complete revised page.")

# What the environment says when there is no critic (the critic-free self-edit inference mode).
SELF_EDIT_FEEDBACK = "No critic is available. Compare your page with the task and fix anything missing or wrong."

# End-of-turn tokens of common chat families; each one the tokenizer holds as a single token stops a turn.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|endoftext|>", "<end_of_turn>", "<|end|>",
               "</s>", "<|eos|>")

_A, _F = "\x00relook-assistant\x00", "\x00relook-feedback\x00"  # sentinels: never produced by a template


class ProtocolError(ValueError):
    """The tokenizer cannot carry the protocol (no chat template, turn tags missing)."""


class Protocol:
    """Token ids of the ReLook conversation for one tokenizer."""

    def __init__(self, tokenizer, system_prompt: str = SYSTEM_PROMPT, extra_eos_ids=()):
        self.tok = tokenizer
        self.system_prompt = system_prompt
        if not getattr(tokenizer, "chat_template", None):
            raise ProtocolError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; ReLook "
                                "talks to the policy as a chat: use an Instruct checkpoint or set its chat_template")
        ids = [tokenizer.convert_tokens_to_ids(t) for t in TURN_TAGS]
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ProtocolError("the tokenizer lacks the ReLook turn tags; load it through Policy.from_pretrained, "
                                "which adds them")
        self.get_feedback_id, self.fb_open_id, self.fb_close_id = ids
        # The environment's block between two policy turns, cut out of the template around two sentinels.
        conv = self._render([{"role": "assistant", "content": _A}, {"role": "user", "content": _F}], True)
        a_end, f_at = conv.index(_A) + len(_A), conv.index(_F)
        self._pre = self._ids(conv[a_end:f_at] + FEEDBACK_OPEN)
        self._post = self._ids(FEEDBACK_CLOSE + conv[f_at + len(_F):])
        # A finished turn ends with what the template closes an assistant message with (<|im_end|>, <|eot_id|>),
        # or with EOS when the template closes it with nothing (the tiny policy).
        close = self._ids(self._render([{"role": "assistant", "content": _A}], False).split(_A, 1)[1])
        special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        self.done_id = close[0] if close and close[0] in special else tokenizer.eos_token_id
        eot = {self.done_id, tokenizer.eos_token_id, *extra_eos_ids}
        vocab = tokenizer.get_vocab()
        eot |= {vocab[t] for t in END_OF_TURN if t in vocab}
        eot.discard(None)
        self.end_ids = sorted(eot)
        self.stop_ids = [self.get_feedback_id] + self.end_ids

    # -- text -> ids
    def _render(self, turns: list[dict], generation_prompt: bool) -> str:
        msgs = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": _F + "task"}] + turns
        text = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt)
        return text.split(_F + "task", 1)[1]  # what follows the task: the part that repeats between turns

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"] if text else []

    def prompt_ids(self, task_prompt: str) -> list[int]:
        """System + task + the assistant header: the context of the first turn."""
        msgs = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": task_prompt}]
        return self._ids(self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))

    def feedback_ids(self, feedback: str, max_tokens: int = 96) -> list[int]:
        """The environment's block after a turn that asked for feedback (body cut to max_tokens)."""
        return self._pre + self._ids(feedback)[:max_tokens] + self._post

    def turn_ids(self, body: str, ask: bool) -> list[int]:
        """A policy turn as the warm start teaches it: the text, then <get_feedback> or the end-of-turn token."""
        return self._ids(body) + [self.get_feedback_id if ask else self.done_id]

    # -- ids -> text
    def stopped(self, ids) -> str:
        """How a sampled turn ended: "feedback", "eos" (its own end of turn) or "length"."""
        if ids and ids[-1] == self.get_feedback_id:
            return "feedback"
        return "eos" if ids and ids[-1] in self.end_ids else "length"

    def cut(self, ids) -> list[int]:
        """A sampled continuation up to and including its first stop token."""
        stops = set(self.stop_ids)
        for t, tok in enumerate(ids):
            if tok in stops:
                return list(ids[:t + 1])
        return list(ids)

    def text(self, ids) -> str:
        """A turn's text for the renderer and the critic: end-of-turn and pad tokens dropped, turn tags kept."""
        drop = set(self.end_ids) | {self.tok.pad_token_id}
        return self.tok.decode([i for i in ids if i not in drop], skip_special_tokens=False)
