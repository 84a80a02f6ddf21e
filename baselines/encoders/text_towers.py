"""Trainable text encoders (fine-tuned with the audio encoder): RoBERTa base/large and two small ones.

`encoders/sentence_encoders.py` holds the *frozen* sentence encoders, whose outputs are cached; the towers
here are trained end to end, so captions are cached as token ids and the transformer runs in
every step. A caption is embedded as the first token (<s>) of the last hidden layer, as in
msclap's CLAP (`out[:, 0, :]`) and in salsa (`use_first_token=True`); RoBERTa's pooler is not
built (it would receive no gradient).

Weights: `checkpoint` names a local folder in the Hugging Face layout (config, weights and
tokenizer files). Without it, `from_pretrained` reads the model from the Hugging Face Hub
(its own cache). Their files are not pinned by checksum here (none could be verified offline).

Small towers: `all-MiniLM-L6-v2` (a pinned asset, in the offline mirror) is a 6-layer BERT that
already knows words -- the text side of the CPU demo runs; `tiny-roberta` is a 2-layer, 64-wide
RoBERTa with random weights and a word-hashing tokenizer (`WordHashTokenizer`): the same code
path with no file at all (contract checks). A random text tower trained from scratch does not
learn the demo task in the few hundred steps a test can afford; a pretrained one does.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import torch
from torch import nn

from benchmark.errors import LarbError

_ROBERTA_COMMON = {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                   "layer_norm_eps": 1e-5, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}


@dataclass(frozen=True)
class TextTowerSpec:
    """A trainable text encoder: its Hugging Face id and architecture (for exact counts on meta)."""

    name: str
    hub_id: str
    architecture: dict[str, Any] = field(hash=False)
    reference: str = ""
    model_type: str = "roberta"
    asset: str = ""  # a registered (pinned) asset holding the weights, when there is one

    @property
    def dim(self) -> int:
        return int(self.architecture["hidden_size"])

    @property
    def pad_token_id(self) -> int:
        return int(self.architecture["pad_token_id"])

    def config(self, dropout: float | None = None):
        from transformers import AutoConfig

        extra = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
        return AutoConfig.for_model(self.model_type, **self.architecture, **extra)

    def random_model(self, dropout: float | None = None) -> nn.Module:
        from transformers import AutoModel

        return AutoModel.from_config(self.config(dropout), add_pooling_layer=False)

    def parameter_count(self) -> int:
        """Parameters of the tower (no pooler), counted on the meta device."""
        with torch.device("meta"):
            model = self.random_model()
        return sum(p.numel() for p in model.parameters())


TINY_VOCAB = 4096
TEXT_TOWERS: dict[str, TextTowerSpec] = {spec.name: spec for spec in (
    TextTowerSpec("roberta-base", "FacebookAI/roberta-base", {
        **_ROBERTA_COMMON, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072}, "Liu et al. 2019, RoBERTa base (125 M with pooler)"),
    TextTowerSpec("roberta-large", "FacebookAI/roberta-large", {
        **_ROBERTA_COMMON, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
        "intermediate_size": 4096}, "Liu et al. 2019, RoBERTa large (355 M with pooler)"),
    TextTowerSpec("tiny-roberta", "", {
        "vocab_size": TINY_VOCAB, "max_position_embeddings": 130, "type_vocab_size": 1, "layer_norm_eps": 1e-5,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 128, "initializer_range": 0.2},
        "test-sized RoBERTa, random weights (initialised wide enough that the first token depends on the words)"),
    TextTowerSpec("bert-base-uncased", "google-bert/bert-base-uncased", {
        "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        "pad_token_id": 0}, "Devlin et al. 2019, BERT base uncased (110 M with pooler); [CLS] is the first token",
        model_type="bert"),
    TextTowerSpec("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", {
        "vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
        "intermediate_size": 1536, "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        "pad_token_id": 0}, "a small pretrained BERT (22.7 M), fine-tuned here: CPU runs with a text encoder "
                            "that knows words", model_type="bert", asset="sentence-transformers/all-MiniLM-L6-v2"),
)}


def text_tower_spec(name: str) -> TextTowerSpec:
    try:
        return TEXT_TOWERS[name]
    except KeyError:
        raise LarbError(f"unknown text encoder {name!r}.",
                        fix=f"use one of {sorted(TEXT_TOWERS)} (--set text_encoder=NAME).") from None


class Tokenizer(Protocol):
    pad_token_id: int

    def __call__(self, texts: list[str], **kwargs: Any) -> dict[str, Any]: ...


class WordHashTokenizer:
    """Lower-cased words hashed (BLAKE2b) into a fixed vocabulary, wrapped in <s> ... </s>.

    Deterministic on every machine; ids 0-2 are <s>, <pad>, </s> as in RoBERTa.
    """

    bos_token_id, pad_token_id, eos_token_id = 0, 1, 2

    def __init__(self, vocab_size: int = TINY_VOCAB) -> None:
        self.vocab_size = vocab_size

    def word_id(self, word: str) -> int:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        return 3 + int.from_bytes(digest, "little") % (self.vocab_size - 3)

    def __call__(self, texts: list[str], max_length: int = 32, **_: Any) -> dict[str, torch.Tensor]:
        ids = torch.full((len(texts), max_length), self.pad_token_id, dtype=torch.long)
        for row, text in enumerate(texts):
            words = [self.word_id(w) for w in re.findall(r"[a-z0-9]+", text.lower())][: max_length - 2]
            tokens = [self.bos_token_id, *words, self.eos_token_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return {"input_ids": ids}


def load_tokenizer(spec: TextTowerSpec, checkpoint: str = "") -> Tokenizer:
    if spec.name == "tiny-roberta":
        return WordHashTokenizer(spec.architecture["vocab_size"])
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_source(spec, checkpoint))


def _source(spec: TextTowerSpec, checkpoint: str) -> str:
    if not checkpoint and spec.asset:
        from baselines import assets

        return str(assets.fetch(spec.asset))
    if checkpoint:
        if not Path(checkpoint).is_dir():
            raise LarbError("text encoder folder not found.", path=checkpoint,
                            fix=f"pass a Hugging Face model folder of {spec.hub_id} (config.json, weights, "
                                "tokenizer files), or leave text_checkpoint empty to use the Hub.")
        return checkpoint
    return spec.hub_id


def remove_punctuation(text: str) -> str:
    """salsa's caption preprocessing: lower case, ASCII punctuation removed."""
    return text.lower().translate(str.maketrans("", "", string.punctuation))


def tokenize(tokenizer: Tokenizer, texts: Sequence[str], max_length: int, strip_punctuation: bool = False
             ) -> torch.Tensor:
    """(len(texts), max_length) token ids, padded with the tokenizer's pad id, truncated."""
    batch = [remove_punctuation(t) if strip_punctuation else t for t in texts]
    if not batch:
        return torch.empty((0, max_length), dtype=torch.long)
    out = tokenizer(batch, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return torch.as_tensor(out["input_ids"], dtype=torch.long)


TextPooling = Literal["first", "mean"]
POOLINGS: tuple[str, ...] = get_args(TextPooling)


class TextTower(nn.Module):
    """Token ids (batch, length), padded with `pad_token_id` -> (batch, dim): the first token's last
    hidden state (`pooling="first"`), or the mean over the real tokens (`"mean"`, sentence-BERT's)."""

    def __init__(self, model: nn.Module, pad_token_id: int, pooling: str = "first") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise LarbError(f"text pooling {pooling!r} is not first or mean.", fix="use --set text_pooling=first.")
        self.model = model
        self.pad_token_id = pad_token_id
        self.pooling = pooling

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = input_ids != self.pad_token_id
        length = max(int(mask.sum(dim=1).max()), 1) if len(input_ids) else 1
        input_ids, mask = input_ids[:, :length], mask[:, :length]  # padding is trailing: trim it
        hidden = self.model(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
        if self.pooling == "first":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def build_text_tower(name: str, checkpoint: str = "", dropout: float | None = None,
                     pretrained: bool = True, pooling: str = "first") -> tuple[TextTower, Tokenizer]:
    """The tower with its weights (random for `tiny-roberta` or `pretrained=False`) and its tokenizer
    (a word-hashing one when nothing is loaded)."""
    from transformers import AutoModel

    spec = text_tower_spec(name)
    if spec.name == "tiny-roberta" or not pretrained:
        model = spec.random_model(dropout)
        tokenizer: Tokenizer = WordHashTokenizer(spec.architecture["vocab_size"])
    else:
        source = _source(spec, checkpoint)
        extra = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
        model = AutoModel.from_pretrained(source, add_pooling_layer=False, **extra)
        if model.config.hidden_size != spec.dim or model.config.model_type != spec.model_type:
            raise LarbError(f"the text encoder at {source} is a {model.config.hidden_size}-d "
                            f"{model.config.model_type}, {spec.name} is a {spec.dim}-d {spec.model_type}.",
                            fix="point text_checkpoint at the right model.")
        tokenizer = load_tokenizer(spec, checkpoint)
    return TextTower(model, spec.pad_token_id, pooling), tokenizer
