"""The shared training loop: loss falls, checkpoints are crash-safe, resume is exact, EMA,
trainable subsets, divergence stops cleanly, two processes train one model."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch.utils.data import TensorDataset

from signgen.config.schema import TrainConfig
from signgen.errors import ConfigError, SignGenError
from signgen.training.checkpoints import complete_checkpoints
from signgen.training.loop import TrainingDivergedError, lock_run_folder, run_training


class Linear(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, dim: int = 4):
        super().__init__()
        self.proj = torch.nn.Linear(dim, 1)

    def forward(self, x):
        return self.proj(x)


class ToyTask:
    """Fit y = x @ w on 64 fixed points."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])

    def build_model(self):
        return Linear(4)

    def train_dataset(self):
        return TensorDataset(self.x, self.y)

    def collate(self, items):
        return torch.stack([a for a, _ in items]), torch.stack([b for _, b in items])

    def loss(self, model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y), {}

    def evaluate(self, model):
        return {"mse": torch.nn.functional.mse_loss(model(self.x), self.y).item()}

    def export(self, model, folder: Path):
        model.save_pretrained(folder)


def cfg(**kw):
    base = dict(max_steps=60, batch_size=16, learning_rate=0.3, warmup_steps=5,
                log_every=10, eval_every=30, save_every=20, keep_checkpoints=2)
    return TrainConfig(**{**base, **kw})


def test_loss_falls_and_the_export_reloads_identically(tmp_path):
    task = ToyTask()
    folder = run_training(task, cfg(), tmp_path, seed=0, device="cpu", progress=False,
                          metadata={"command": "test"})
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["eval/mse"] < 0.1 * task.evaluate(Linear(4))["mse"]
    model = Linear.from_pretrained(folder)
    info = json.loads((folder / "training.json").read_text())
    assert info["steps"] == 60 and info["command"] == "test"
    assert abs(task.evaluate(model)["mse"] - log[-1]["eval/mse"]) < 1e-6
    # Checkpoints rotate: only the newest two complete ones remain (the last is final).
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [40, 60]


def test_fused_optimizer_trains_like_the_per_tensor_one_and_resumes_exactly(tmp_path):
    config = cfg(max_steps=20, save_every=10, fused_optimizer=True)
    plain = run_training(ToyTask(), cfg(max_steps=20, save_every=10), tmp_path / "plain",
                         seed=0, device="cpu", progress=False)
    fused = run_training(ToyTask(), config, tmp_path / "fused", seed=0, device="cpu",
                         progress=False)
    checkpoint = tmp_path / "fused" / "checkpoints" / "step-20"
    state = torch.load(checkpoint / "optimizer.bin", weights_only=True)
    assert state["param_groups"][0]["fused"] is True
    wp, wf = Linear.from_pretrained(plain).proj.weight, Linear.from_pretrained(fused).proj.weight
    torch.testing.assert_close(wf, wp, rtol=1e-4, atol=1e-5)
    # Resumed from step 10, the fused run ends where the uninterrupted one did.
    shutil.rmtree(tmp_path / "fused" / "checkpoints" / "step-20")
    shutil.rmtree(tmp_path / "fused" / "model")
    resumed = run_training(ToyTask(), config, tmp_path / "fused", seed=0, device="cpu",
                           progress=False)
    assert torch.equal(Linear.from_pretrained(resumed).proj.weight, wf)


def test_resume_uses_the_last_complete_checkpoint(tmp_path):
    task = ToyTask()
    run_training(task, cfg(max_steps=30), tmp_path, seed=0, device="cpu", progress=False)
    # Simulate a kill after step 20's checkpoint: drop the final (step 30) checkpoint.
    shutil.rmtree(tmp_path / "checkpoints" / "step-30")
    # A crash while writing step 60 leaves a temporary folder; it must be ignored.
    partial = tmp_path / "checkpoints" / ".tmp-step-60"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"garbage")
    run_training(task, cfg(max_steps=60), tmp_path, seed=0, device="cpu", progress=False)
    assert not partial.exists()
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log]
    # The second run continued after step 20 (the last complete checkpoint): it logged
    # steps 30..60 again.
    assert steps[-1] == 60 and steps.count(30) == 2
    assert json.loads((tmp_path / "model" / "training.json").read_text())["steps"] == 60


def test_same_seed_same_result(tmp_path):
    a = run_training(ToyTask(), cfg(max_steps=20), tmp_path / "a", seed=3, device="cpu",
                     progress=False)
    b = run_training(ToyTask(), cfg(max_steps=20), tmp_path / "b", seed=3, device="cpu",
                     progress=False)
    wa, wb = Linear.from_pretrained(a).proj.weight, Linear.from_pretrained(b).proj.weight
    assert torch.equal(wa, wb)


class RecordingTask(ToyTask):
    """ToyTask that records the raw weights it trains with, optionally crashes at a
    given loss call, or returns NaN from a given loss call on; batches carry ids."""

    def __init__(self, nan_at: int | None = None, crash_at: int | None = None,
                 ids: bool = False):
        super().__init__()
        self.nan_at, self.crash_at, self.ids = nan_at, crash_at, ids
        self.calls, self.raw = 0, []

    def train_dataset(self):
        if not self.ids:
            return super().train_dataset()
        return [{"sample_id": f"pt-{i:02d}", "x": x, "y": y}
                for i, (x, y) in enumerate(zip(self.x, self.y, strict=True))]

    def collate(self, items):
        if not self.ids:
            return super().collate(items)
        return {"sample_ids": [it["sample_id"] for it in items],
                "x": torch.stack([it["x"] for it in items]),
                "y": torch.stack([it["y"] for it in items])}

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt("simulated kill")
        self.raw.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        x, y = (batch["x"], batch["y"]) if self.ids else batch
        loss = torch.nn.functional.mse_loss(model(x), y)
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return loss, {}


def exported(folder):
    return Linear.from_pretrained(folder).state_dict()


def raw_checkpoint(run_dir, step):
    from safetensors.torch import load_file
    return load_file(run_dir / "checkpoints" / f"step-{step}" / "model.safetensors")


class BiasOnly(ToyTask):
    def build_model(self):
        self.model = Linear(4)
        self.initial = self.model.proj.weight.detach().clone()
        return self.model

    def trainable_parameters(self, model):
        return [model.proj.bias]


def test_only_the_trainable_parameters_train(tmp_path):
    task = BiasOnly()
    folder = run_training(task, cfg(max_steps=10), tmp_path, seed=0, device="cpu",
                          progress=False)
    weights = exported(folder)
    assert torch.equal(weights["proj.weight"], task.initial)
    assert not torch.equal(weights["proj.bias"], torch.zeros(1))
    assert [p.requires_grad for p in task.model.parameters()] == [False, True]
    state = tmp_path / "checkpoints" / "step-10" / "optimizer.bin"
    optimiser = torch.load(state, weights_only=True)
    assert len(optimiser["state"]) == 1


def test_ema_exports_the_average_of_the_raw_weights(tmp_path):
    decay, steps = 0.7, 8
    plain, averaged = RecordingTask(), RecordingTask()
    run_training(plain, cfg(max_steps=steps, eval_every=3), tmp_path / "plain", seed=0,
                 device="cpu", progress=False)
    folder = run_training(averaged, cfg(max_steps=steps, eval_every=3), tmp_path / "ema",
                          seed=0, device="cpu", progress=False, ema_decay=decay)
    # Evaluating with the EMA weights (steps 3, 6) does not disturb training.
    for a, b in zip(plain.raw, averaged.raw, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # Raw weights after steps 1..N: seen by the next loss call, the last one checkpointed.
    after = averaged.raw[1:] + [raw_checkpoint(tmp_path / "ema", steps)]
    shadow = dict(averaged.raw[0])
    for n, weights in enumerate(after):
        d = 0.0 if n == 0 else min(decay, (1 + n) / (10 + n))  # diffusers' EMA warm-up
        shadow = {k: s - (1 - d) * (s - weights[k]) for k, s in shadow.items()}
    ema_weights = exported(folder)
    for k in shadow:
        torch.testing.assert_close(ema_weights[k], shadow[k], rtol=0, atol=1e-6)
        assert not torch.allclose(ema_weights[k], after[-1][k])
    lines = (tmp_path / "ema" / "metrics.jsonl").read_text().splitlines()
    log = [json.loads(line) for line in lines]
    model = Linear.from_pretrained(folder)
    assert abs(averaged.evaluate(model)["mse"] - log[-1]["eval/mse"]) < 1e-6
    info = json.loads((folder / "training.json").read_text())
    assert info["ema_decay"] == decay and info["processes"] == 1


def test_resume_continues_training_and_ema_exactly(tmp_path):
    # Two micro-batches per step and 4 batches per epoch: step 5 resumes mid-epoch.
    config = cfg(max_steps=10, save_every=5, eval_every=4, grad_accumulation=2)
    straight = run_training(RecordingTask(), config, tmp_path / "a", seed=1, device="cpu",
                            progress=False, ema_decay=0.8)
    killed = RecordingTask(crash_at=2 * 6)  # dies during step 6, after step 5's checkpoint
    try:
        run_training(killed, config, tmp_path / "b", seed=1, device="cpu", progress=False,
                     ema_decay=0.8)
    except KeyboardInterrupt:
        pass
    assert [s for s, _ in complete_checkpoints(tmp_path / "b")] == [5]
    resumed = run_training(RecordingTask(), config, tmp_path / "b", seed=1, device="cpu",
                           progress=False, ema_decay=0.8)
    for a, b in [(exported(straight), exported(resumed)),
                 (raw_checkpoint(tmp_path / "a", 10), raw_checkpoint(tmp_path / "b", 10))]:
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_different_ema_setting(tmp_path):
    run_training(ToyTask(), cfg(max_steps=2), tmp_path, seed=0, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="EMA"):
        run_training(ToyTask(), cfg(max_steps=4), tmp_path, seed=0, device="cpu",
                     progress=False, ema_decay=0.9)


def test_resume_refuses_a_run_trained_on_other_inputs(tmp_path):
    task = ToyTask()
    task.inputs_version = "data a"
    run_training(task, cfg(max_steps=2), tmp_path, seed=0, device="cpu", progress=False)
    assert json.loads((tmp_path / "inputs.json").read_text()) == {"inputs_version": "data a"}
    run_training(task, cfg(max_steps=3), tmp_path, seed=0, device="cpu", progress=False)
    task.inputs_version = "data b"
    with pytest.raises(ConfigError, match="trained on other inputs"):
        run_training(task, cfg(max_steps=4), tmp_path, seed=0, device="cpu", progress=False)
    unrecorded = tmp_path / "unrecorded"  # a run from before inputs were recorded
    run_training(ToyTask(), cfg(max_steps=2), unrecorded, seed=0, device="cpu",
                 progress=False)
    with pytest.raises(ConfigError, match="were not recorded"):
        run_training(task, cfg(max_steps=3), unrecorded, seed=0, device="cpu",
                     progress=False)


def test_a_second_job_on_a_busy_run_folder_fails_at_once(tmp_path):
    """Two trainings on one run folder would interleave metrics and overwrite each
    other's checkpoints: the second is refused, naming the first one's pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from signgen.training.loop import "
         "lock_run_folder as lock\nwith lock(sys.argv[1]):\n print('held', flush=True); "
         "time.sleep(60)", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SignGenError, match=f"another training \\(pid {holder.pid}\\)"):
            run_training(ToyTask(), cfg(max_steps=2), tmp_path, seed=0, device="cpu",
                         progress=False)
        assert not (tmp_path / "metrics.jsonl").exists()
    finally:
        holder.kill()  # the lock goes with the process
        holder.wait()
    run_training(ToyTask(), cfg(max_steps=2), tmp_path, seed=0, device="cpu", progress=False)
    with lock_run_folder(tmp_path):  # released when the training returned
        pass


@pytest.mark.parametrize("ids", [True, False])
def test_nan_loss_stops_without_saving_and_resume_works(tmp_path, ids):
    config = cfg(max_steps=8, save_every=2, log_every=1, warmup_steps=1)
    task = RecordingTask(nan_at=5, ids=ids)
    with pytest.raises(TrainingDivergedError) as caught:
        run_training(task, config, tmp_path, seed=0, device="cpu", progress=False,
                     ema_decay=0.9)
    message = str(caught.value)
    assert "nan" in message and "at step 5" in message and "epoch 1 batch 0" in message
    if ids:  # the batch's sample ids are listed (step 5 = first batch of epoch 1)
        batch = RecordingTask(ids=True).train_dataset()
        epoch_1 = torch.Generator().manual_seed(0 * 100_003 + 1)  # seed 0, epoch 1
        order = torch.randperm(64, generator=epoch_1).tolist()
        assert str([batch[i]["sample_id"] for i in order[:16]]) in message
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [2, 4]
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
    assert not (tmp_path / "model").exists()
    run_training(RecordingTask(ids=ids), config, tmp_path, seed=0, device="cpu",
                 progress=False, ema_decay=0.9)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in lines]
    assert steps == [1, 2, 3, 4, 5, 6, 7, 8]


def test_two_processes_share_one_model_and_split_the_data(tmp_path):
    """torchrun, 2 CPU processes (gloo): disjoint batches, DDP-averaged gradients, one
    checkpoint and one export (written by the main process)."""
    from signgen.training.smoke import ToyRegression

    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "signgen.training.smoke",
               "--run-dir", str(tmp_path), "--steps", "2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
        process.communicate()
        raise
    assert process.returncode == 0, output[-3000:]
    ranks = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["processes"] for r in ranks] == [2, 2]
    first, second = (r["steps"] for r in ranks)
    assert len(first) == len(second) == 2
    for a, b in zip(first, second, strict=True):
        assert not set(a["sample_ids"]) & set(b["sample_ids"])  # each rank its own data
        assert a["weights"] == b["weights"]  # identical weights before every step
    # Step 1 on the two ranks = one step on the union of their batches (averaged gradient).
    task = ToyRegression()
    model = torch.nn.Linear(4, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(first[0]["weights"][:4]).reshape(1, 4))
        model.bias.copy_(torch.tensor(first[0]["weights"][4:]))
    union = [int(i.split("-")[1]) for i in first[0]["sample_ids"] + second[0]["sample_ids"]]
    config = TrainConfig()
    optimiser = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=config.weight_decay)
    torch.nn.functional.mse_loss(model(task.x[union]), task.y[union]).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimiser.step()
    after = torch.cat([model.weight.flatten(), model.bias]).detach()
    torch.testing.assert_close(torch.tensor(first[1]["weights"]), after, rtol=0, atol=1e-6)
    # One checkpoint (RNG state per rank, one EMA state) and one export, by one process.
    assert [s for s, _ in complete_checkpoints(tmp_path)] == [2]
    names = {p.name for p in (tmp_path / "checkpoints" / "step-2").iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl", "ema.safetensors", "ema.json"} <= names
    assert not any(name.startswith("custom_checkpoint") for name in names)  # no EMA pickle
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    info = json.loads((tmp_path / "model" / "training.json").read_text())
    assert info["processes"] == 2 and info["steps"] == 2
    from safetensors.torch import load_file
    torch.nn.Linear(4, 1).load_state_dict(load_file(tmp_path / "model" / "model.safetensors"))


def test_sigkill_at_random_moments_then_resume_matches_an_uninterrupted_run(tmp_path):
    """SIGKILL a training (checkpointing every step) at random moments, several times,
    then let it finish: every checkpoint it resumes from is complete, and the exported
    model is bit-identical to a run that was never interrupted."""
    import random
    import time

    from signgen.training.checkpoints import complete_checkpoints

    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def command(run_dir):
        return [sys.executable, "-m", "signgen.training.smoke", "--run-dir", str(run_dir),
                "--steps", "400", "--save-every", "1", "--device", "cpu"]

    subprocess.run(command(tmp_path / "reference"), env=env, check=True, timeout=300,
                   capture_output=True)
    killed = tmp_path / "killed"
    rng = random.Random(0)
    progress = [0]

    def newest() -> int:
        return max((step for step, _ in complete_checkpoints(killed)), default=0)

    for _ in range(4):
        process = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while newest() <= progress[-1] and time.monotonic() < deadline:
            time.sleep(0.01)  # until this run trains (past imports and resume)
        time.sleep(rng.uniform(0.0, 0.05))  # then at a random moment: a step or a save
        process.send_signal(signal.SIGKILL)
        process.wait()
        progress.append(newest())
    assert progress == sorted(progress) and 0 < progress[-1] < 400, progress  # interrupted
    assert not (killed / "model").exists()
    subprocess.run(command(killed), env=env, check=True, timeout=300, capture_output=True)
    reference = (tmp_path / "reference" / "model" / "model.safetensors").read_bytes()
    assert (killed / "model" / "model.safetensors").read_bytes() == reference


def test_architecture_fingerprint_names_shapes_not_weights():
    from signgen.training.loop import architecture_fingerprint

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    torch.manual_seed(1)
    b = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    wider = torch.nn.Sequential(torch.nn.Linear(4, 9), torch.nn.Linear(9, 2))
    assert architecture_fingerprint(a) == architecture_fingerprint(b)
    assert architecture_fingerprint(a) != architecture_fingerprint(wider)
    assert len(architecture_fingerprint(a)) == 16
