"""The turn protocol: the ids a rollout splices together are what the tokenizer's own chat template renders for the
same conversation (ChatML like SmolLM2/Qwen, Llama-3 headers, the tiny policy's template), stop tokens include
every end-of-turn token, and a tokenizer that cannot carry the protocol is refused with a clear message."""
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from relook.policy import EOS, build_tokenizer
from relook.protocol import (FEEDBACK_CLOSE, FEEDBACK_OPEN, GET_FEEDBACK, SYSTEM_PROMPT, TURN_TAGS, Protocol,
                             ProtocolError)

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("<|begin_of_text|>{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
CORPUS = ["Plan: a header.\n```html\n<html><body><h1>Hi</h1></body></html>\n```\n", "make a page", SYSTEM_PROMPT,
          "The header is white; the task asks for navy."] * 5


def chat_tokenizer(template, specials, eos, tags=True):
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders
    raw.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=eos)
    if tags:
        tok.add_tokens(list(TURN_TAGS), special_tokens=True)
    tok.chat_template = template
    return tok


@pytest.fixture(params=["chatml", "llama3", "tiny"])
def proto(request):
    if request.param == "chatml":
        tok = chat_tokenizer(CHATML, ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], "<|endoftext|>")
    elif request.param == "llama3":
        tok = chat_tokenizer(LLAMA3, ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                                      "<|end_of_text|>"], "<|end_of_text|>")
    else:
        tok = build_tokenizer(CORPUS, vocab_size=400)
    return request.param, Protocol(tok)


def test_spliced_ids_are_the_templates_conversation(proto):
    name, pr = proto
    turn1, turn2 = "Plan: a header.\n```html\n<h1>Hi</h1>\n```\n", "Plan: fix it.\n```html\n<h1>Hey</h1>\n```\n"
    fb = "The header is white; the task asks for navy."
    ids = pr.prompt_ids("make a page") + pr.turn_ids(turn1, ask=True) + pr.feedback_ids(fb) + \
        pr.turn_ids(turn2, ask=False)
    msgs = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "make a page"},
            {"role": "assistant", "content": turn1 + GET_FEEDBACK},
            {"role": "user", "content": FEEDBACK_OPEN + fb + FEEDBACK_CLOSE},
            {"role": "assistant", "content": turn2}]
    want = pr.tok.apply_chat_template(msgs, tokenize=False)
    if name == "chatml":  # generation stops at <|im_end|>: the newline after it is the template's, not sampled
        want = want.removesuffix("\n")
    if name == "tiny":  # its template closes a finished turn with nothing; the policy's EOS does
        want += EOS
    if name == "llama3":  # the template trims message content; the policy's own text keeps its newline
        want = want.replace("```<|eot_id|>", "```\n<|eot_id|>").replace("```<get_feedback>", "```\n<get_feedback>")
    assert pr.tok.decode(ids, skip_special_tokens=False) == want


def test_stop_tokens_and_how_a_turn_ended(proto):
    name, pr = proto
    vocab = pr.tok.get_vocab()
    want_done = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "tiny": EOS}[name]
    assert pr.done_id == vocab[want_done]
    assert pr.stop_ids[0] == pr.get_feedback_id and pr.done_id in pr.stop_ids
    assert pr.tok.eos_token_id in pr.stop_ids                                # <|endoftext|> / <|end_of_text|> too
    body = pr._ids("Plan.\n```html\n<p>x</p>\n```\n")
    assert pr.stopped(body + [pr.get_feedback_id]) == "feedback"
    assert pr.stopped(body + [pr.done_id]) == "eos" and pr.stopped(body) == "length"
    assert pr.cut(body + [pr.done_id] + body) == body + [pr.done_id]
    text = pr.text(body + [pr.done_id])
    assert text.endswith("```\n") and "<p>x</p>" in text                    # end-of-turn dropped for the renderer
    assert pr.text(body + [pr.get_feedback_id]).endswith(GET_FEEDBACK)      # the tag kept (format check reads it)


def test_feedback_body_is_bounded_and_the_system_prompt_explains_the_protocol(proto):
    name, pr = proto
    long = pr.feedback_ids("word " * 500, max_tokens=20)
    assert len(long) == len(pr.feedback_ids("", max_tokens=20)) + 20
    assert pr.fb_open_id in long and pr.fb_close_id in long
    prompt = pr.tok.decode(pr.prompt_ids("make a page"))
    if name == "tiny":
        assert SYSTEM_PROMPT not in prompt                                  # learnt from demonstrations
    else:
        assert SYSTEM_PROMPT.split(GET_FEEDBACK)[0].strip()[:60] in prompt and GET_FEEDBACK in prompt


def test_a_tokenizer_that_cannot_carry_the_protocol_is_refused():
    tok = chat_tokenizer(CHATML, ["<|im_start|>", "<|im_end|>", "<|endoftext|>"], "<|endoftext|>")
    tok.chat_template = None
    with pytest.raises(ProtocolError, match="no chat template"):
        Protocol(tok)
    bare = chat_tokenizer(CHATML, ["<|im_start|>", "<|im_end|>"], "<|im_end|>", tags=False)
    with pytest.raises(ProtocolError, match="lacks the ReLook turn tags"):
        Protocol(bare)
