"""Texts longer than ``max_length``: which tokens a truncated text keeps, and chunked documents.

Reviews and articles often run past the encoder's window (IMDB reviews average about 306
tokens, 89 % exceed 128). Two answers are offered, both on token ids:

* **Truncation** keeps the ``head`` (the tokenizer's own default), the ``tail``, or the
  ``head+tail``: a share of the budget from the start and the rest from the end. Sun et al.
  (2019, *How to Fine-Tune BERT for Text Classification?*) found 128 head + 382 tail tokens
  best on IMDB, hence the default head share of a quarter.
* **Chunks** cut the text into overlapping windows of ``max_length`` tokens, every window is
  classified in one length-sorted batch stream, and the windows' logits are pooled per text
  (mean, or max).

Special tokens stay where the tokenizer puts them: each text is tokenised whole once, the
family's leading and trailing special tokens (``[CLS]``/``[SEP]``, ``<s>``/``</s>``, …) are
set aside, the content tokens are cut, and every kept sequence or window gets them back.
🤗 tokenizers can truncate the tail (``truncation_side="left"``) and return overflowing
windows, but neither keeps head and tail, and tokenising once gives every strategy from the
same ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

TRUNCATIONS = ("head", "tail", "head+tail")
LONG_TEXT_MODES = ("truncate", "chunks")
AGGREGATIONS = ("mean", "max")


def special_token_layout(tokenizer) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a text's content."""
    with_specials = list(tokenizer("a")["input_ids"])
    content = list(tokenizer("a", add_special_tokens=False)["input_ids"])
    for start in range(len(with_specials) - len(content) + 1):
        if with_specials[start : start + len(content)] == content:
            return start, len(with_specials) - start - len(content)
    # A post-processor that rewrites the content itself: assume BERT's one leading token.
    extra = max(len(with_specials) - len(content), 0)
    return min(extra, 1), extra - min(extra, 1)


def _split(ids: Sequence[int], prefix: int, suffix: int) -> tuple[list[int], list[int], list[int]]:
    ids = list(ids)
    end = len(ids) - suffix
    return ids[:prefix], ids[prefix:end], ids[end:]


def select_tokens(
    ids: Sequence[int],
    max_length: int,
    truncation: str = "head",
    head_share: float = 0.25,
    prefix: int = 1,
    suffix: int = 1,
) -> list[int]:
    """Cut a tokenised text (special tokens included) to ``max_length`` tokens.

    ``prefix``/``suffix`` special tokens are kept; of the content, ``head`` keeps the start,
    ``tail`` the end, ``head+tail`` ``round(head_share · budget)`` tokens from the start and
    the rest from the end.

    >>> select_tokens([101, 1, 2, 3, 4, 5, 6, 102], 6, "head+tail", 0.25)
    [101, 1, 4, 5, 6, 102]
    """
    ids = list(ids)
    if len(ids) <= max_length:
        return ids
    start, content, end = _split(ids, prefix, suffix)
    budget = max(max_length - prefix - suffix, 0)
    if truncation == "head":
        kept = content[:budget]
    elif truncation == "tail":
        kept = content[len(content) - budget :]
    elif truncation == "head+tail":
        head = min(round(budget * head_share), budget)
        kept = content[:head] + content[len(content) - (budget - head) :]
    else:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, got '{truncation}'.")
    return start + kept + end


def window_ids(
    ids: Sequence[int], max_length: int, stride: int, prefix: int = 1, suffix: int = 1
) -> list[list[int]]:
    """Overlapping windows of at most ``max_length`` tokens over a tokenised text.

    Consecutive windows share at least ``stride`` content tokens; the last window ends at the
    text's end and is full length (a short last window would weigh as much as a full one in
    the mean), so it may overlap its neighbour by more. Every window carries the special
    tokens. A text that fits is one window.

    >>> window_ids([101, 1, 2, 3, 4, 5, 6, 7, 102], 6, 1)
    [[101, 1, 2, 3, 4, 102], [101, 4, 5, 6, 7, 102]]
    """
    ids = list(ids)
    if len(ids) <= max_length:
        return [ids]
    start, content, end = _split(ids, prefix, suffix)
    budget = max_length - prefix - suffix
    if not 0 <= stride < budget:
        raise ValueError(
            f"stride must be at least 0 and below the {budget} content tokens of a window, got {stride}."
        )
    last = len(content) - budget
    starts = [*range(0, last, budget - stride), last]
    return [start + content[s : s + budget] + end for s in starts]


def aggregate_window_logits(
    logits: np.ndarray, document_index: Sequence[int], documents: int, how: str = "mean"
) -> np.ndarray:
    """Pool the logits of windows ``(W, C)`` into one row per document ``(documents, C)``.

    ``document_index[w]`` is the document window ``w`` belongs to; ``how`` is ``mean`` or
    ``max`` (per class, over a document's windows).
    """
    index = np.asarray(document_index, dtype=np.int64)
    out = np.zeros((documents, logits.shape[-1]), dtype=np.float32)
    if how == "mean":
        np.add.at(out, index, logits)
        counts = np.bincount(index, minlength=documents).astype(np.float32)
        return out / np.maximum(counts, 1)[:, None]
    if how == "max":
        out.fill(-np.inf)
        np.maximum.at(out, index, logits)
        return out
    raise ValueError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got '{how}'.")


@dataclass(frozen=True)
class TextInput:
    """How texts become the token ids a model reads; saved with every run and export.

    >>> TextInput(max_length=256, truncation="head+tail").describe()
    'the first 25% and the last 75% of at most 256 tokens'
    """

    max_length: int = 128
    truncation: str = "head"
    head_share: float = 0.25
    long_text: str = "truncate"
    stride: int | None = None  # None: a quarter of the window is shared with the next one
    chunk_aggregation: str = "mean"

    def __post_init__(self) -> None:
        if self.stride is None:
            object.__setattr__(self, "stride", self.max_length // 4)

    @classmethod
    def of(cls, config: Any) -> TextInput:
        """The text input of a :class:`~loralab.config.TrainConfig` (or any object with its fields)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    @classmethod
    def from_dict(cls, data: dict) -> TextInput:
        """Read a saved text input; keys it does not know (from a later version) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def chunks(self) -> bool:
        return self.long_text == "chunks"

    @property
    def reads_first_tokens(self) -> bool:
        """Whether long texts are cut the plain way (their first ``max_length`` tokens)."""
        return self.truncation == "head" and not self.chunks

    @property
    def tokenizer_reproduces(self) -> bool:
        """Whether a tokenizer alone, truncating at ``max_length`` on the kept side, reads texts
        as this does (head or tail; not head+tail, not windows)."""
        return self.truncation in ("head", "tail") and not self.chunks

    def plain_transformers_note(self) -> dict[str, Any]:
        """What a model exported with this input expects, for its ``config.json`` and model
        card: a plain transformers model or pipeline cuts texts by its tokenizer alone, which
        keeps the head or (saved with ``truncation_side="left"``) the tail, and cannot pool
        windows."""
        plain = self.tokenizer_reproduces
        if plain:
            note = f"The tokenizer keeps {self.describe()}, as the run did."
        else:
            note = (
                f"The run reads {self.describe()}; a plain transformers model or pipeline cannot "
                f"do this by itself and keeps the first {self.max_length} tokens. Predict like "
                "the run with loralab (loralab predict or loralab serve on this folder's run), or cut "
                "the token ids the same way (loralab.data.long_text) before calling the model."
            )
        return {**self.to_dict(), "description": self.describe(), "plain_transformers": plain, "note": note}

    def describe(self) -> str:
        """One phrase for people: what a long text is cut to."""
        if self.chunks:
            return (
                f"windows of {self.max_length} tokens overlapping by {self.stride}, "
                f"{self.chunk_aggregation} of their logits per text"
            )
        if self.truncation == "head+tail":
            return (
                f"the first {self.head_share:.0%} and the last {1 - self.head_share:.0%} "
                f"of at most {self.max_length} tokens"
            )
        return f"the {'first' if self.truncation == 'head' else 'last'} {self.max_length} tokens"

    def encode(self, tokenizer, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, cut to ``max_length`` by ``truncation``, without padding."""
        if self.truncation == "head" and getattr(tokenizer, "truncation_side", "right") == "right":
            # the tokenizer's own truncation gives the same ids
            return tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=False)[
                "input_ids"
            ]
        prefix, suffix = special_token_layout(tokenizer)
        return [
            select_tokens(ids, self.max_length, self.truncation, self.head_share, prefix, suffix)
            for ids in _tokenise_whole(tokenizer, texts)
        ]

    def encode_windows(self, tokenizer, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Every text's windows, one after another, and the text each window belongs to."""
        prefix, suffix = special_token_layout(tokenizer)
        windows: list[list[int]] = []
        document_index: list[int] = []
        for document, ids in enumerate(_tokenise_whole(tokenizer, texts)):
            pieces = window_ids(ids, self.max_length, int(self.stride or 0), prefix, suffix)
            windows += pieces
            document_index += [document] * len(pieces)
        return windows, document_index

    def encode_documents(self, tokenizer, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """What a model is run on to classify ``texts``: windows with chunks, else one cut
        sequence per text; and the text each sequence belongs to."""
        if self.chunks:
            return self.encode_windows(tokenizer, texts)
        return self.encode(tokenizer, texts), list(range(len(texts)))


def _tokenise_whole(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    # The tokenizer warns that a sequence is longer than the model accepts; it is cut here.
    verbose = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(verbose, dict):
        verbose["sequence-length-is-longer-than-the-specified-maximum"] = True
    return tokenizer(list(texts), truncation=False, padding=False)["input_ids"]
