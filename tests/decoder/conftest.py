"""A tiny caption corpus and a decoder overfitted on it, shared by the decoder tests."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from diffusion_bridge.decoder import ClipBpeVocabulary, DecoderTrainConfig, PrefixCaptioner, train_decoder

CAPTIONS = [
    "a dog runs on the grass.",
    "two cats sleep on a red sofa.",
    "a man rides a blue bicycle down the street.",
    "a plate of food with broccoli and rice.",
    "a train stops at the station.",
    "a woman holds an umbrella in the rain.",
    "children play soccer in a park.",
    "a giraffe eats leaves from a tall tree.",
]
EMBED_DIM = 16


@dataclass
class Overfit:
    model: PrefixCaptioner
    vocab: ClipBpeVocabulary
    embeddings: torch.Tensor
    captions: list[str]


def unit_vectors(n: int, dim: int = EMBED_DIM, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def tiny_model(vocab_size: int, seed: int = 0, embed_dim: int = EMBED_DIM, spread: bool = False) -> PrefixCaptioner:
    """A 2-layer, 64-wide decoder. `spread`: weights ~ N(0, 0.3) instead of GPT-2's N(0, 0.02), so an
    untrained model's next-token logits are far apart (no float near-ties between equivalent decoders)."""
    torch.manual_seed(seed)
    model = PrefixCaptioner.from_scratch(embed_dim, vocab_size, n_layer=2, n_head=2, n_embd=64, n_positions=64)
    if spread:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, 0.3)
    return model.eval()


@contextmanager
def single_thread():
    """Tiny models run fastest on one thread; two OpenMP threads on a busy 2-core runner spin ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def overfit() -> Overfit:
    """A from-scratch decoder trained until it reproduces its 8 captions (~2-10 s on 2 CPU cores)."""
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    embeddings = unit_vectors(len(CAPTIONS))
    model = tiny_model(vocab.vocab_size)
    config = DecoderTrainConfig(epochs=100, batch_size=8, lr=3e-3, warmup_steps=10, weight_decay=0.0, seed=0)
    with single_thread():
        train_decoder(model, vocab, embeddings, CAPTIONS, config, progress=False)
    return Overfit(model, vocab, embeddings, list(CAPTIONS))


@pytest.fixture
def make_model():
    """Factory of small randomly initialised decoders: make_model(vocab_size, seed=0, embed_dim=16)."""
    return tiny_model


@pytest.fixture
def make_embeddings():
    """Factory of seeded unit vectors: make_embeddings(n, dim=16, seed=0)."""
    return unit_vectors
