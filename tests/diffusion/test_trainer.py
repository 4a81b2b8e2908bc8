"""The trainer: exact resume, workdir safety, learning on clustered data, and DDP over 2 CPU processes."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from diffusion_bridge.diffusion import DiffusionModel, RunOptions, TrainConfig, load_model, train, validate
from diffusion_bridge.errors import CheckpointError, ConfigError, InputError, WorkdirError

DIM = 32
CPU = RunOptions("cpu", progress=False)


def clustered(n, seed, radius, clusters=8):
    g = torch.Generator().manual_seed(seed)
    centers = F.normalize(torch.randn(clusters, DIM, generator=torch.Generator().manual_seed(99)), dim=-1)
    x = centers[torch.randint(0, clusters, (n,), generator=g)] + 0.15 * torch.randn(n, DIM, generator=g)
    return F.normalize(x, dim=-1) * radius


def model_for(seed=0):
    torch.manual_seed(seed)
    return DiffusionModel(DIM, denoiser_kwargs={"width": 64, "depth": 2})


@pytest.fixture(scope="module")
def data():
    radius = model_for().radius
    return clustered(512, 1, radius), clustered(128, 2, radius)


RESUME_CONFIG = TrainConfig(
    steps=30, batch_size=32, lr=2e-3, warmup_steps=5, lr_schedule="cosine", ema_every=2, ema_start=4,
    log_every=10, eval_every=0, checkpoint_every=10, seed=3, optimizer="adamw", weight_decay=0.01,
)


def test_stop_and_resume_is_bit_identical(tmp_path, data):
    x_train, x_val = data
    straight = train(model_for(), x_train, x_val, RESUME_CONFIG, tmp_path / "a", CPU)
    first = train(model_for(), x_train, x_val, RESUME_CONFIG, tmp_path / "b", RunOptions("cpu", progress=False, stop_after=13))
    assert first.step == 13
    # a fresh process would rebuild the model with other weights: resume must overwrite them all
    resumed = train(model_for(seed=42), x_train, x_val, RESUME_CONFIG, tmp_path / "b", CPU)
    assert resumed.step == straight.step == 30
    for key, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value), key
        assert torch.equal(resumed.ema_state_dict[key], straight.ema_state_dict[key]), key
    assert not torch.equal(straight.ema_state_dict["denoiser.in_proj.weight"], straight.model.denoiser.in_proj.weight)
    assert [h["step"] for h in resumed.history["train"]] == [10, 13, 20, 30]
    on_disk = load_model(tmp_path / "b" / "checkpoint", weights="ema")
    assert torch.equal(on_disk.state_dict()["denoiser.out_proj.weight"], straight.ema_state_dict["denoiser.out_proj.weight"])


def test_resuming_on_another_device_type_continues_with_a_warning(tmp_path, data):
    x_train, x_val = data
    config = TrainConfig(steps=6, batch_size=16, eval_every=0, log_every=3)
    train(model_for(), x_train, x_val, config, tmp_path, RunOptions("cpu", progress=False, stop_after=3))
    state_file = tmp_path / "checkpoint" / "training_state.pt"
    state = torch.load(state_file, weights_only=True)
    state["device_type"] = "cuda"  # as a GPU run writes it: a CUDA generator state cannot seed a CPU one
    state["rng"]["generator/batches"] = torch.zeros(16, dtype=torch.uint8)
    torch.save(state, state_file)
    with pytest.warns(UserWarning, match="written on cuda and is resumed on cpu.*not bit-identically"):
        result = train(model_for(), x_train, x_val, config, tmp_path, CPU)
    assert result.step == 6


def test_a_training_state_of_another_format_is_refused_by_file(tmp_path, data):
    x_train, x_val = data
    config = TrainConfig(steps=4, batch_size=16, eval_every=0, log_every=2)
    train(model_for(), x_train, x_val, config, tmp_path, RunOptions("cpu", progress=False, stop_after=2))
    state_file = tmp_path / "checkpoint" / "training_state.pt"
    torch.save({**torch.load(state_file, weights_only=True), "format_version": 2}, state_file)
    with pytest.raises(CheckpointError, match=r"checkpoint: training_state\.pt has format 2.*delete"):
        train(model_for(), x_train, x_val, config, tmp_path, CPU)


def test_a_finished_run_is_not_trained_again(tmp_path, data):
    x_train, x_val = data
    config = TrainConfig(steps=5, batch_size=16, eval_every=0, log_every=5)
    done = train(model_for(), x_train, x_val, config, tmp_path, CPU)
    again = train(model_for(seed=1), x_train, x_val, config, tmp_path, CPU)
    assert again.step == 5
    assert torch.equal(again.model.denoiser.in_proj.weight, done.model.denoiser.in_proj.weight)


def test_a_workdir_of_another_run_is_refused(tmp_path, data):
    x_train, x_val = data
    config = TrainConfig(steps=4, batch_size=16, eval_every=0, log_every=2)
    train(model_for(), x_train, x_val, config, tmp_path, CPU)
    with pytest.raises(WorkdirError, match=r"train\.lr: checkpoint 8e-05, now 0\.001.*another workdir"):
        train(model_for(), x_train, x_val, TrainConfig(**{**config.to_dict(), "lr": 1e-3}), tmp_path, CPU)
    with pytest.raises(WorkdirError, match=r"data: checkpoint trained on.*\[512, 32\]/\[128, 32\], now \[511, 32\]"):
        train(model_for(), x_train[:-1], x_val, config, tmp_path, CPU)
    relabelled = TrainConfig(**{**config.to_dict(), "log_every": 1, "checkpoint_every": 1, "val_timesteps": [10, 990]})
    assert train(model_for(), x_train, x_val, relabelled, tmp_path, CPU).step == 4


@pytest.mark.parametrize(
    ("skip", "loss_ratio", "cos600_gain"),
    [(True, 0.75, 0.08), (False, 0.05, 0.15)],  # measured: 0.205 → 0.133, +0.12; 22.8 → 0.23, +0.25
)
def test_training_on_clustered_data_lowers_the_validation_loss(tmp_path, data, skip, loss_ratio, cos600_gain):
    x_train, x_val = data
    torch.manual_seed(0)
    model = DiffusionModel(DIM, denoiser_kwargs={"width": 64, "depth": 2, "skip": skip})
    before = validate(model, x_val, TrainConfig().val_timesteps, generator=torch.Generator().manual_seed(0))
    config = TrainConfig(steps=400, batch_size=128, lr=2e-3, warmup_steps=20, lr_schedule="cosine",
                         log_every=100, eval_every=200, checkpoint_every=0)
    result = train(model, x_train, x_val, config, tmp_path, CPU)
    after = result.history["val"][-1]
    assert [v["step"] for v in result.history["val"]] == [200, 400]
    assert after["loss"] < loss_ratio * before["loss"]
    assert after["cos_x0/t600"] > before["cos_x0/t600"] + cos600_gain  # t=600 is mostly noise
    assert after["cos_x0/t100"] > 0.8 and after["cos_x0/t100"] > after["cos_x0/t800"]
    again = validate(result.model, x_val, config.val_timesteps, generator=torch.Generator().manual_seed(config.seed))
    assert after == {"step": 400, "time_s": after["time_s"], **again}
    assert 0 < result.history["val"][0]["time_s"] < after["time_s"]
    assert result.samples_per_s > 0


def test_validation_is_deterministic_and_complete(data):
    _, x_val = data
    model = model_for()
    a = validate(model, x_val, [100, 200, 400, 600, 800], generator=torch.Generator().manual_seed(4), batch_size=50)
    b = validate(model, x_val, (100, 200, 400, 600, 800), generator=torch.Generator().manual_seed(4))
    assert a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-5) for k in a)
    buckets = [k for k in a if k.startswith("loss/")]
    assert buckets[0] == "loss/t000-099" and buckets[-1] == "loss/t900-999" and len(buckets) == 10
    assert a["loss"] == pytest.approx(sum(a[k] for k in buckets) / 10)
    assert sorted(k for k in a if k.startswith("cos_x0/")) == [f"cos_x0/t{t}" for t in (100, 200, 400, 600, 800)]
    assert model.training  # restored


def test_bad_inputs_raise_named_errors(tmp_path, data):
    x_train, x_val = data
    with pytest.raises(InputError, match=r"x0_train has shape \(512, 16\).*\[N, 32\]"):
        train(model_for(), x_train[:, :16], x_val, TrainConfig(steps=1), tmp_path, CPU)
    with pytest.raises(ConfigError, match="precision.*fp8"):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match=r"val_timesteps \[1000\] lie outside \[0, 999\].*train\.val_timesteps"):
        train(model_for(), x_train, x_val, TrainConfig(steps=1, val_timesteps=(600, 1000)), tmp_path, CPU)
    assert validate(model_for(), x_val, [])["loss"] > 0  # no timesteps: the band losses alone
    with pytest.raises(ConfigError, match="unknown TrainConfig keys \\['learning_rate'\\]"):
        TrainConfig.from_dict({"learning_rate": 1e-3})


@pytest.mark.parametrize(("launched", "precision"), [("fp16", "bf16"), ("bf16", "bf16"), ("fp16", "fp16")])
def test_a_launch_with_another_mixed_precision_is_refused(tmp_path, data, monkeypatch, launched, precision):
    # `accelerate launch --mixed_precision X` (or a saved accelerate config) sets this for every rank; on the
    # CPU the run's precision means fp32 ("no"), so any mixed precision contradicts it
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", launched)
    x_train, x_val = data
    config = TrainConfig(steps=2, batch_size=16, eval_every=0, precision=precision)
    with pytest.raises(ConfigError, match=rf"launched with mixed_precision='{launched}'.*--mixed_precision no"):
        train(model_for(), x_train, x_val, config, tmp_path, CPU)
    assert not (tmp_path / "checkpoint").exists()


def test_learning_rate_warms_up_from_zero_then_follows_transformers_cosine(tmp_path, data):
    x_train, x_val = data
    config = TrainConfig(steps=12, batch_size=16, lr=1e-3, warmup_steps=4, lr_schedule="cosine", min_lr_ratio=0.1,
                         log_every=1, eval_every=0)
    lrs = [row["lr"] for row in train(model_for(), x_train, x_val, config, tmp_path, CPU).history["train"]]
    warmup = [1e-3 * i / 4 for i in range(4)]  # transformers' warm-up starts at 0
    cosine = [1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * (i - 4) / 8)) for i in range(4, 12)]
    assert lrs == pytest.approx(warmup + cosine, rel=1e-9, abs=1e-15)
    constant = TrainConfig(steps=3, batch_size=16, lr=3e-4, log_every=1, eval_every=0)
    assert [row["lr"] for row in train(model_for(), x_train, x_val, constant, tmp_path / "c", CPU).history["train"]] == [3e-4] * 3
    with pytest.raises(ConfigError, match=r"lr_schedule must be one of \['constant', 'linear', 'cosine'\]"):
        TrainConfig(lr_schedule="step")


@pytest.mark.slow
def test_two_ddp_processes_match_one(tmp_path, data):
    x_train, x_val = data
    save_file({"x0": x_train}, tmp_path / "train.safetensors")
    save_file({"x0": x_val}, tmp_path / "val.safetensors")
    cfg = {"model": {"denoiser_kwargs": {"width": 64, "depth": 2}},
           "train": {"steps": 12, "batch_size": 32, "lr": 1e-3, "log_every": 4, "eval_every": 0,
                     "checkpoint_every": 6, "ema_every": 1, "ema_start": 2}}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    worker = Path(__file__).with_name("ddp_worker.py")

    def run(name, launcher):
        out = tmp_path / name
        out.mkdir()
        args = [str(worker), str(out), "--train", str(tmp_path / "train.safetensors"), "--val",
                str(tmp_path / "val.safetensors"), "--config", str(tmp_path / "cfg.json"),
                "--workdir", str(out / "work"), "--cpu", "--no-progress"]
        proc = subprocess.run([sys.executable, *launcher, *args], capture_output=True, text=True, timeout=1800)  # hang guard only
        assert proc.returncode == 0, proc.stderr[-3000:]
        return out

    single = run("single", [])
    # --standalone: torchrun binds its own rendezvous store to a free port and keeps it, so no port is guessed
    double = run("double", ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"])
    one = load_file(single / "rank0.safetensors")
    rank0, rank1 = load_file(double / "rank0.safetensors"), load_file(double / "rank1.safetensors")
    for key in one:
        assert torch.equal(rank0[key], rank1[key]), key  # DDP keeps the ranks in lockstep
        torch.testing.assert_close(rank0[key], one[key], rtol=1e-4, atol=1e-5)  # same global batch as 1 process
    assert not torch.equal(one["denoiser.out_proj.weight"], model_for().state_dict()["denoiser.out_proj.weight"])
    saved = json.loads((double / "work" / "checkpoint" / "config.json").read_text())
    assert saved["train"]["batch_size"] == 32


def test_nan_training_data_is_refused_by_row(tmp_path):
    from diffusion_bridge.checks import NonFiniteError
    from diffusion_bridge.diffusion import DiffusionModel, TrainConfig, train

    model = DiffusionModel(dim=8, denoiser="mlp", denoiser_kwargs={"width": 16, "depth": 1, "time_dim": 8})
    x = torch.randn(20, 8)
    x[7, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"rows \[7\]"):
        train(model, x, None, TrainConfig(steps=2, batch_size=4), tmp_path / "run", RunOptions(progress=False))


def test_the_trainers_optimizer_decays_only_what_the_config_says():
    from diffusion_bridge.training import make_optimizer, param_groups

    model = model_for()
    plain = make_optimizer("adamw", param_groups(model, 0.0), 1e-3)
    assert [g["weight_decay"] for g in plain.param_groups] == [0.0]  # not AdamW's default 0.01
    decayed = make_optimizer("adamw", param_groups(model, 0.01), 1e-3, fused=True)
    assert [g["weight_decay"] for g in decayed.param_groups] == [0.01, 0.0]  # matrices, then biases
    assert decayed.defaults["fused"]  # torch has a fused CPU kernel: the trainer keeps using it
