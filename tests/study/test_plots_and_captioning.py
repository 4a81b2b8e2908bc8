"""The study's figures, the captioning of every representation, and device selection, on small real inputs."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from diffusion_bridge.decoder import ClipBpeVocabulary, DecoderTrainConfig, PrefixCaptioner, train_decoder
from diffusion_bridge.decoder.checkpoints import CaptionDecoder
from diffusion_bridge.devices import resolve_device
from diffusion_bridge.study.captioning import caption_representations, sweep_name
from diffusion_bridge.study.plots import (
    caption_contact_sheet,
    paired_cosine_histogram,
    projection_scatter,
    sweep_plot,
)
from diffusion_bridge.study.representations import NAMES, Representations

CAPTIONS = ["a red star.", "two blue rings.", "a green square on the left.", "a white cross."]


def unit(n: int, dim: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_the_histogram_draws_one_curve_per_representation_over_the_paired_cosines():
    text, index = unit(12, 8, 0), torch.arange(12) // 3
    reps = {"a": unit(4, 8, 1), "b": unit(4, 8, 2)}
    figure = paired_cosine_histogram(reps, text, index)
    (axes,) = figure.axes
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["a", "b"]
    assert len(axes.patches) == 2 and axes.get_xlim()[0] <= -1 and axes.get_xlim()[1] >= 1


def test_the_projection_plots_every_set_and_the_sweep_plot_reads_json_keys_in_numeric_order():
    figure = projection_scatter({"x": unit(30, 8, 3), "y": unit(20, 8, 4)}, max_points=10)
    assert [len(c.get_offsets()) for c in figure.axes[0].collections] == [10, 10]
    sweep = {"1000": {"m": 3.0}, "200": {"m": 2.0}, "0": {"m": 1.0}}  # as JSON gives it back: string keys
    line = sweep_plot(sweep, ("m",)).axes[0].get_lines()[0]
    assert line.get_xdata().tolist() == [0, 200, 1000] and line.get_ydata().tolist() == [1.0, 2.0, 3.0]


def test_the_contact_sheet_shows_the_sampled_images_with_every_evaluations_caption(tmp_path):
    paths = []
    for i in range(5):
        Image.new("RGB", (16, 16), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    images = pd.DataFrame({"imgid": range(5), "split": "test", "image_path": paths})
    results = {"evaluations": {n: [{"image_id": i, "caption": f"{n} {i}"} for i in range(5)] for n in ("raw", "bridged")}}
    figure = caption_contact_sheet(results, images, count=3, seed=0)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert len(figure.axes) == 6 and len(texts) == 3
    assert all("raw " in t and "bridged " in t for t in texts)
    held_out = {i: f"truth of {i}" for i in range(5)}
    figure = caption_contact_sheet(results, images, count=3, seed=0, held_out=held_out)
    for ax in figure.axes[::2]:  # image, then its captions: the ground truth of that very image comes first
        imgid = int(ax.get_title().split()[-1])
        lines = figure.axes[figure.axes.index(ax) + 1].texts[0].get_text().splitlines()
        assert lines[0] == f"ground truth (held out): truth of {imgid}" and lines[1:] == [f"raw: raw {imgid}",
                                                                                      f"bridged: bridged {imgid}"]


@pytest.fixture(scope="module")
def decoder():
    vocab = ClipBpeVocabulary.fit(CAPTIONS)
    torch.manual_seed(0)
    model = PrefixCaptioner.from_scratch(8, vocab.vocab_size, 1, 2, 32, 32, prefix_length=2, eos_id=vocab.eos_id)
    inputs = unit(len(CAPTIONS), 8, 5)
    train_decoder(model, vocab, inputs, CAPTIONS, DecoderTrainConfig(epochs=150, batch_size=4, lr=3e-3, warmup_steps=5,
                  weight_decay=0.0), progress=False)
    return CaptionDecoder(model, vocab), inputs


def test_every_evaluation_and_every_t0_is_captioned_by_its_decoder(decoder):
    model, inputs = decoder
    reps = Representations(imgid=torch.tensor([10, 11, 12, 13]), **{n: inputs for n in NAMES},
                           another_caption_sentid=torch.arange(4), sweep={0: inputs.flip(0), 600: inputs})
    evaluations = {"bridged": {"representation": "bridged", "decoder": "text"},
                   "another_caption": {"representation": "another_caption", "decoder": "text"}}
    generation = {"method": "greedy", "beam_size": 2, "max_length": 10, "batch_size": 3}
    results = caption_representations(reps, {"text": model}, evaluations, "text", generation, torch.device("cpu"))
    assert [r["caption"] for r in results["evaluations"]["bridged"]] == CAPTIONS  # it learned its 4 captions
    assert [r["image_id"] for r in results["evaluations"]["another_caption"]] == [10, 11, 12, 13]
    assert [e["t0"] for e in results["sweep"]] == [0, 600]
    assert [r["caption"] for r in results["sweep"][0]["results"]] == CAPTIONS[::-1]
    assert sweep_name(600) == "t0=600"


def test_devices_resolve_auto_and_refuse_nonsense():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RuntimeError):
        resolve_device("warp-drive")


def test_train_captions_are_tokenised_once_and_each_decoder_gets_its_own_rows():
    """One vocabulary and tokenisation for every decoder; a decoder's rows follow its inputs' sentid order."""
    from diffusion_bridge.decoder import caption_tokens
    from diffusion_bridge.errors import InputError
    from diffusion_bridge.study.captioning import rows_for, tokenise_train_captions

    table = pd.DataFrame({"sentid": [10, 11, 12, 13, 14], "split": ["train", "train", "val", "train", "train"],
                          "caption": [*CAPTIONS[:2], "a black hexagon.", *CAPTIONS[2:]]})
    vocab, tokenised = tokenise_train_captions(table, {"source": "scratch"}, max_tokens=None)
    assert tokenised["sentid"].tolist() == [10, 11, 13, 14]  # val captions neither tokenised nor in the vocabulary
    assert "hexagon</w>" not in vocab.tokens and vocab.tokens == ClipBpeVocabulary.fit(CAPTIONS).tokens
    order = torch.tensor([14, 10, 14, 11])  # an input set's own order, a caption used twice
    rows = rows_for(tokenised, order)
    expected = caption_tokens(vocab, [CAPTIONS[3], CAPTIONS[0], CAPTIONS[3], CAPTIONS[1]])
    assert rows.lengths.tolist() == expected.lengths.tolist()
    for row, length in enumerate(expected.lengths.tolist()):
        assert rows.tokens[row, :length].tolist() == expected.tokens[row, :length].tolist()
    with pytest.raises(InputError, match=r"ids \[12\] have no row.*rerun `prepare`"):
        rows_for(tokenised, torch.tensor([10, 12]))
