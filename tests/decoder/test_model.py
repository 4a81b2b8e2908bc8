"""The prefix captioner: mapper shape, logits alignment and loss against direct GPT-2 computations."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from diffusion_bridge.decoder import PrefixCaptioner
from diffusion_bridge.errors import CheckpointError, InputError


def test_mapper_is_clipcap_mlp(make_model):
    model = make_model(vocab_size=30)
    first, act, second = model.mapper
    assert isinstance(act, nn.Tanh)
    assert (first.in_features, first.out_features) == (16, 10 * 64 // 2)
    assert (second.in_features, second.out_features) == (10 * 64 // 2, 10 * 64)
    assert model.prefix(torch.randn(3, 16)).shape == (3, 10, 64)


def test_logits_align_with_tokens_and_loss_skips_padding(make_model, make_embeddings):
    torch.manual_seed(1)
    model = make_model(vocab_size=30).eval()
    x = make_embeddings(3)
    tokens = torch.randint(3, 30, (3, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    tokens = tokens.masked_fill(mask == 0, 0)

    logits = model(x, tokens)
    # Independent: GPT-2 on [prefix; token embeddings]; position P-1+i predicts token i.
    inputs = torch.cat([model.mapper(x).view(3, 10, 64), model.gpt.transformer.wte(tokens)], dim=1)
    full = model.gpt(inputs_embeds=inputs).logits
    torch.testing.assert_close(logits, full[:, 9:-1])

    # Right padding: an attention mask changes nothing at the real positions.
    masked = model(x, tokens, mask)
    torch.testing.assert_close(masked[mask.bool()], logits[mask.bool()])

    expected = F.cross_entropy(full[:, 9:-1][mask.bool()], tokens[mask.bool()])
    torch.testing.assert_close(model.loss(x, tokens, mask), expected)


def test_config_is_json_and_rebuilds_the_same_shapes(make_model):
    model = make_model(vocab_size=30)
    config = json.loads(json.dumps(model.config))
    rebuilt = PrefixCaptioner.from_config(config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert (rebuilt.embed_dim, rebuilt.prefix_length, rebuilt.vocab_size) == (16, 10, 30)


def test_from_pretrained_gpt2_loads_local_weights(tmp_path):
    torch.manual_seed(0)
    gpt = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_positions=32, n_embd=32, n_layer=1, n_head=2))
    gpt.save_pretrained(tmp_path)
    model = PrefixCaptioner.from_pretrained_gpt2(str(tmp_path), embed_dim=8, prefix_length=4)
    torch.testing.assert_close(model.gpt.transformer.wte.weight, gpt.transformer.wte.weight)
    assert model.mapper[-1].out_features == 4 * 32
    assert model.config["source"] == str(tmp_path)
    with pytest.raises(CheckpointError, match="no-gpt2-here"):
        PrefixCaptioner.from_pretrained_gpt2(str(tmp_path / "no-gpt2-here"), embed_dim=8)


def test_wrong_embedding_width_is_named(make_model):
    model = make_model(vocab_size=30)
    with pytest.raises(InputError, match=r"shape \(2, 12\).*\[N, 16\]"):
        model.check_embeddings(torch.zeros(2, 12))


def test_the_fused_tanh_gelu_computes_gpt2s_gelu_and_dropout_is_a_setting(make_embeddings):
    """The default run's scratch decoder swaps GPT-2's gelu_new for its one-kernel twin and turns dropout off:
    the first must not change what the model computes, the second must reach every dropout of GPT-2."""
    tokens = torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0]])
    x = make_embeddings(2)
    logits = []
    for activation in ("gelu_new", "gelu_pytorch_tanh"):
        torch.manual_seed(0)
        model = PrefixCaptioner.from_scratch(16, 20, n_layer=2, n_head=2, n_embd=32, n_positions=16, prefix_length=3,
                                             activation=activation).eval()
        logits.append(model(x, tokens))
    torch.testing.assert_close(logits[0], logits[1], rtol=1e-5, atol=1e-6)
    quiet = PrefixCaptioner.from_scratch(16, 20, n_layer=1, n_head=2, n_embd=32, n_positions=16, dropout=0.0)
    config = quiet.gpt.config
    assert (config.resid_pdrop, config.embd_pdrop, config.attn_pdrop) == (0.0, 0.0, 0.0)
    quiet.train()
    torch.testing.assert_close(quiet(x, tokens), quiet(x, tokens))  # no dropout: training mode is deterministic
