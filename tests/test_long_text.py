"""Truncation strategies, windows over long texts and the pooling of window logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from loralab.data.batching import TOKENS_PER_THREAD, sorted_batches, token_budget
from loralab.data.long_text import (
    TextInput,
    aggregate_window_logits,
    select_tokens,
    special_token_layout,
    window_ids,
)
from tests.conftest import make_tokenizer

CLS, SEP = 101, 102
CONTENT = list(range(1, 21))  # 20 content tokens
TEXT = [CLS, *CONTENT, SEP]


@pytest.mark.parametrize(
    ("truncation", "share", "kept"),
    [
        ("head", 0.25, [1, 2, 3, 4, 5, 6, 7, 8]),
        ("tail", 0.25, [13, 14, 15, 16, 17, 18, 19, 20]),
        ("head+tail", 0.25, [1, 2, 15, 16, 17, 18, 19, 20]),
        ("head+tail", 0.5, [1, 2, 3, 4, 17, 18, 19, 20]),
        ("head+tail", 0.0, [13, 14, 15, 16, 17, 18, 19, 20]),
        ("head+tail", 1.0, [1, 2, 3, 4, 5, 6, 7, 8]),
    ],
)
def test_truncation_keeps_the_chosen_tokens_and_the_special_tokens(truncation, share, kept):
    assert select_tokens(TEXT, 10, truncation, share) == [CLS, *kept, SEP]


def test_head_and_tail_follow_sun_et_al_by_default_and_short_texts_are_untouched():
    long = [CLS, *range(1000, 1800), SEP]
    cut = select_tokens(long, 512, "head+tail")
    assert len(cut) == 512
    assert cut[1:129] == list(range(1000, 1128))  # 128 head tokens
    assert cut[129:-1] == list(range(1800 - 382, 1800))  # 382 tail tokens
    assert select_tokens(TEXT, 22, "head+tail") == TEXT


@pytest.mark.parametrize(("prefix", "suffix"), [(0, 0), (1, 0), (0, 1), (2, 1)])
def test_truncation_respects_every_layout_of_special_tokens(prefix, suffix):
    ids = [-1] * prefix + CONTENT + [-2] * suffix
    cut = select_tokens(ids, 6 + prefix + suffix, "head+tail", 0.5, prefix, suffix)
    assert cut == [-1] * prefix + [1, 2, 3, 18, 19, 20] + [-2] * suffix


@given(
    length=st.integers(0, 300),
    max_length=st.integers(5, 40),  # room for a content token
    stride_share=st.floats(0, 0.99),
    prefix=st.integers(0, 2),
    suffix=st.integers(0, 2),
)
def test_windows_cover_every_token_and_overlap_by_the_stride(
    length, max_length, stride_share, prefix, suffix
):
    budget = max_length - prefix - suffix
    stride = int(stride_share * budget)
    ids = [-1] * prefix + list(range(length)) + [-2] * suffix
    windows = window_ids(ids, max_length, stride, prefix, suffix)
    covered: set[int] = set()
    previous_end = None
    for window in windows:
        assert len(window) <= max_length
        assert window[:prefix] == [-1] * prefix and window[len(window) - suffix :] == [-2] * suffix
        content = window[prefix : len(window) - suffix]
        if not content:  # an empty text
            continue
        assert content == list(range(content[0], content[0] + len(content)))  # contiguous
        if previous_end is not None:
            assert previous_end - content[0] >= stride  # shared with the previous window
        previous_end = content[-1] + 1
        covered |= set(content)
    assert covered == set(range(length))
    if len(ids) > max_length:
        assert all(len(w) == max_length for w in windows)


def test_windows_on_known_input_and_a_bad_stride():
    assert window_ids(TEXT, 10, 2) == [
        [CLS, 1, 2, 3, 4, 5, 6, 7, 8, SEP],
        [CLS, 7, 8, 9, 10, 11, 12, 13, 14, SEP],
        [CLS, 13, 14, 15, 16, 17, 18, 19, 20, SEP],
    ]
    with pytest.raises(ValueError, match="stride"):
        window_ids(TEXT, 10, 8)


def test_window_logits_pool_to_the_hand_computed_mean_and_max():
    logits = np.array([[1.0, 5.0], [3.0, -1.0], [0.5, 0.5], [2.0, 4.0], [-2.0, 0.0]], dtype=np.float32)
    documents = [0, 0, 1, 2, 2]
    mean = aggregate_window_logits(logits, documents, 3, "mean")
    np.testing.assert_allclose(mean, [[2.0, 2.0], [0.5, 0.5], [0.0, 2.0]])
    top = aggregate_window_logits(logits, documents, 3, "max")
    np.testing.assert_allclose(top, [[3.0, 5.0], [0.5, 0.5], [2.0, 4.0]])


def _template_tokenizer(single: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3, **{w: i + 4 for i, w in enumerate("abcdefghij")}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")


@pytest.mark.parametrize(
    ("single", "layout"), [("<s> $A </s>", (1, 1)), ("$A </s>", (0, 1)), ("<s> <s> $A </s>", (2, 1))]
)
def test_special_tokens_are_found_for_other_tokenizer_families(single, layout):
    tokenizer = _template_tokenizer(single)
    assert special_token_layout(tokenizer) == layout
    text = " ".join("abcdefghij")
    text_input = TextInput(max_length=6 + sum(layout), truncation="head+tail", head_share=0.5)
    assert text_input.encode(tokenizer, [text]) == [tokenizer("a b c h i j")["input_ids"]]


def test_head_truncation_matches_the_tokenizer_and_windows_index_their_text(tmp_path):
    tokenizer = make_tokenizer(tmp_path)
    assert special_token_layout(tokenizer) == (1, 1)
    texts = ["good " * 30, "bad film", "dull " * 12]
    native = tokenizer(texts, truncation=True, max_length=10)["input_ids"]
    assert TextInput(max_length=10).encode(tokenizer, texts) == native
    tail = TextInput(max_length=10, truncation="tail")
    assert (
        tail.encode(tokenizer, texts)
        == tokenizer.__class__.from_pretrained(tmp_path, truncation_side="left")(
            texts, truncation=True, max_length=10
        )["input_ids"]
    )
    windows, documents = TextInput(max_length=10, long_text="chunks", stride=2).encode_windows(
        tokenizer, texts
    )
    assert documents == [0] * 5 + [1] + [2] * 2  # 30 content tokens: windows start at 0, 6, 12, 18, 22
    assert all(w[0] == tokenizer.cls_token_id and w[-1] == tokenizer.sep_token_id for w in windows)
    assert windows[5] == tokenizer("bad film")["input_ids"]


@given(
    lengths=st.lists(st.integers(1, 600), min_size=1, max_size=300),
    batch_size=st.integers(1, 64),
    max_tokens=st.one_of(st.none(), st.integers(1, 4096)),
)
def test_inference_batches_cover_every_text_once_longest_first_within_a_token_budget(
    lengths, batch_size, max_tokens
):
    batches = sorted_batches(lengths, batch_size, max_tokens)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    flat = [lengths[i] for batch in batches for i in batch]
    assert flat == sorted(flat, reverse=True)
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        if max_tokens is not None and len(batch) > 1:
            assert max(lengths[i] for i in batch) * len(batch) <= max_tokens
    if max_tokens is None:
        assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)


def test_long_texts_come_in_smaller_batches_and_only_cpus_have_a_budget():
    assert [len(b) for b in sorted_batches([128] * 10, 4, 512)] == [4, 4, 2]
    assert [len(b) for b in sorted_batches([512] * 10 + [128] * 8, 8, 1024)] == [2, 2, 2, 2, 2, 8]
    assert [len(b) for b in sorted_batches([5000, 3], 8, 1024)] == [1, 1]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert token_budget() == token_budget("cpu") == 2 * TOKENS_PER_THREAD
    finally:
        torch.set_num_threads(threads)
    assert token_budget("cuda") is None


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, None),
        ({"long_text": "chunks", "stride": 16, "chunk_aggregation": "max"}, None),
        ({"truncation": "head+tail", "head_share": 0.5}, None),
        ({"stride": 16}, "--stride applies with --long-text chunks"),
        ({"chunk_aggregation": "max"}, "--chunk-aggregation applies with --long-text chunks"),
        ({"head_share": 0.9}, "--head-share applies with --truncation head+tail"),
        ({"long_text": "chunks", "truncation": "head+tail", "head_share": 0.5}, None),  # training cuts
        (
            {"long_text": "chunks", "truncation": "tail", "train_on_chunks": True},
            "--truncation applies unless",
        ),
    ],
)
def test_long_text_settings_the_reading_does_not_use_are_named(settings, named):
    from loralab.config import TrainConfig
    from loralab.methods.base import unused_text_settings

    said = unused_text_settings(TrainConfig(method="lora", **settings))
    assert said is None if named is None else named in (said or "")
