"""On a CUDA device: every model and attack runs end to end, stepping problems together equals
stepping them one by one, a replayed CUDA graph equals the eager step, no step reads the
device from the host, and a seed gives the same client draws on a CPU and a GPU.

Marked ``gpu``: ``make gpu-check`` runs them where CUDA exists (they skip with their reason
elsewhere), with the GPU bench, in one short command.
"""

from __future__ import annotations

import pytest
import torch

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.data.datasets import CIFAR10
from gradinv.data.victims import VictimBatch
from gradinv.defenses.base import NoDefense
from gradinv.defenses.dpsgd import DPSGD
from gradinv.defenses.precode import Precode
from gradinv.device import full_float32
from gradinv.federated.client import FederatedClient
from gradinv.models.build import build_model
from gradinv.models.random_stream import standard_normals, uniforms
from tests.attacks.helpers import engine_for, make_attack
from tests.helpers import option, run_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]
CUDA = torch.device("cuda", 0)
ON_GPU = ["trainer.accelerator=gpu", "dataset=cifar10", "dataset.num_victims=2"]
MODELS = ["mlp", "cnn", "resnet18", "vit", "vit_b16", "cnn6", "cnn6d", "fcn3", "lenet"]
CELLS = [
    *[[f"model={m}", "attack=dia", "model.dropout=0.25"] for m in MODELS],
    ["attack=ig"],
    ["attack=wiig", "model.dropout=0.25"],
    ["attack=dlg", "threat.labels=false"],
    ["attack=ig_precode", "defense=precode"],
    ["attack=ig", "defense=ppp"],
    ["attack=ig", "defense=noise"],
    ["attack=ig", "defense=prune"],
    ["attack=ig", "defense=quantize"],
    ["attack=dia", "defense=dpsgd", "client=fedavg", "model.dropout=0.25", "dataset.batch_size=2"],
    ["attack=dia", "client=fedavg", "model.dropout=0.25"],
    ["attack=ig", "threat.labels=false", "dataset.batch_size=4"],
    ["attack=rgap", "model=cnn6"],
    ["attack=rgap", "model=fcn3", "model.dropout=0.25", "threat=masks"],
]


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: ",".join(c))
def test_every_model_attack_defense_and_client_runs_on_cuda(cell, tmp_path):
    budget = [] if "attack=rgap" in cell else ["attack.optim.iterations=4"]
    outcome = run_config([*ON_GPU, *budget, *cell], tmp_path)
    assert outcome["status"] == "ok" and outcome["device"] == "cuda:0"
    assert outcome["metrics"]["psnr"] is not None


def _cuda_setting(name: str, victims: int, dropout: float = 0.25, defense=None):
    """A CIFAR-10-sized model on the GPU, the server's copy, and one client round per victim,
    in full float32 as a run computes it."""
    full_float32(CUDA)
    cfg = option("model", name)
    cfg.dropout = dropout
    if "depth" in cfg:
        cfg.depth = 1
    protect = defense or NoDefense()
    model = build_model(cfg, CIFAR10.spec, seed=0, prepare=protect.prepare_model)
    client = FederatedClient(model, protect).to(CUDA)
    server = ServerView.of(
        client.model, CIFAR10.spec, client.batch_statistics
    )  # before the round, as a run
    generator = torch.Generator().manual_seed(1)
    updates = [
        client.share(
            VictimBatch(
                torch.randn(1, *CIFAR10.spec.shape, generator=generator),
                torch.randint(0, 10, (1,), generator=generator),
                (v,),
            )
        )[0]
        for v in range(victims)
    ]
    return server, updates


def _gpu_trainer(callbacks):
    import lightning as L

    return L.Trainer(
        max_epochs=1,
        accelerator="gpu",
        devices=1,
        logger=False,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )


@pytest.mark.parametrize(("name", "attack"), [("mlp", "dia"), ("cnn", "ig"), ("vit", "dia")])
def test_problems_stepped_together_equal_one_by_one_on_cuda(name, attack):
    """Six problems in one fit or one fit each reach the same reconstructions. On CUDA a batched
    product sums in another order than a single problem's (cuBLAS picks its kernel by shape), and
    Adam divides each gradient by its own running size, so a component near zero can move a pixel
    either way: the H200 run left 2 of 3072 CNN pixels 0.003 apart after 8 steps (with every other
    pixel within 1e-4). The bound: at most 1% of the pixels beyond 1e-4, none beyond 1e-2."""
    server, updates = _cuda_setting(name, victims=3)
    runs = []
    for vectorize in (True, False):
        chosen = make_attack(
            attack, vectorize=vectorize, restarts=2, optim={"iterations": 8, "signed": False}
        )
        runs.append(
            chosen.reconstruct(server, updates, AttackRuntime(seed=3, make_trainer=_gpu_trainer))
        )
    for together, alone in zip(*runs, strict=True):
        apart = (together.images - alone.images).abs()
        assert float(apart.max()) <= 1e-2 and float((apart > 1e-4).float().mean()) <= 0.01
        assert together.gradient_distance == pytest.approx(alone.gradient_distance, rel=1e-3)
        assert together.iterations == alone.iterations


PATHS = [
    ("mlp", "dia", 4, None, "folded"),
    ("vit", "dia", 1, None, "folded"),
    ("mlp", "ig", 4, Precode(latent=8), "vmap"),
    ("vit", "ig", 2, Precode(latent=8), "loop"),
    ("resnet18", "ig", 4, None, "folded"),
]


@pytest.mark.parametrize(("name", "attack", "victims", "defense", "path"), PATHS)
def test_a_captured_step_replays_what_the_eager_step_computes(name, attack, victims, defense, path):
    server, updates = _cuda_setting(name, victims, defense=defense)
    thetas = []
    for graph in (True, False):
        engine = engine_for(make_attack(attack, cuda_graph=graph), server, updates, device="cuda")
        assert engine.batching == path
        for _ in range(12):
            engine.step()
        assert (engine.graph is not None) is graph
        thetas.append(engine.theta.detach().clone())
    torch.testing.assert_close(thetas[0], thetas[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "attack", "victims", "defense", "path"), PATHS)
def test_no_step_reads_the_device_from_the_host(name, attack, victims, defense, path):
    """Eager steps under CUDA's sync debug mode (an error at any synchronizing call), and replays
    of the captured step (the capture itself synchronizes, as torch's graph capture does)."""
    server, updates = _cuda_setting(name, victims, defense=defense)
    for graph in (False, True):
        engine = engine_for(make_attack(attack, cuda_graph=graph), server, updates, device="cuda")
        for _ in range(5 if graph else 1):  # libraries initialized (cuBLAS, cuDNN); captured
            engine.step()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            for _ in range(6):
                engine.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert engine.flush().losses


def test_a_seed_draws_the_same_client_round_on_a_cpu_and_a_gpu():
    shared = {}
    for device in ("cpu", "cuda"):
        cfg = option("model", "cnn")
        cfg.dropout = 0.25
        model = build_model(cfg, CIFAR10.spec, seed=0, prepare=Precode(latent=8).prepare_model)
        client = FederatedClient(model, Precode(latent=8), share_masks=True, share_samples=True).to(
            device
        )
        torch.manual_seed(5)
        victim = VictimBatch(torch.rand(2, *CIFAR10.spec.shape), torch.tensor([1, 2]), (0, 1))
        shared[device] = client.share(victim)[0]
    cpu, gpu = shared["cpu"], shared["cuda"]
    for key in cpu.masks:
        assert torch.equal(cpu.masks[key], gpu.masks[key].cpu())
    for key in cpu.samples:
        assert torch.equal(cpu.samples[key], gpu.samples[key].cpu())
    for key in cpu.gradients:
        torch.testing.assert_close(
            gpu.gradients[key].cpu(), cpu.gradients[key], rtol=1e-4, atol=1e-6
        )


def test_a_seed_draws_the_same_dpsgd_round_on_a_cpu_and_a_gpu():
    """DP-SGD's noise (std 0.5 per entry here, far above the gradients) comes from the CPU
    generator: the two devices share one update, up to the per-example gradients' rounding."""
    shared = {}
    for device in ("cpu", "cuda"):
        cfg = option("model", "mlp")
        cfg.dropout, cfg.depth = 0.25, 1
        client = FederatedClient(
            build_model(cfg, CIFAR10.spec, seed=0), DPSGD(noise_multiplier=0.5)
        ).to(device)
        torch.manual_seed(5)
        victim = VictimBatch(torch.rand(3, *CIFAR10.spec.shape), torch.tensor([1, 2, 2]), (0, 1, 2))
        shared[device] = client.share(victim)[0]
    for key, gradient in shared["cpu"].gradients.items():
        torch.testing.assert_close(
            shared["cuda"].gradients[key].cpu(), gradient, rtol=1e-4, atol=1e-6
        )


def test_the_counter_stream_is_the_same_on_a_cpu_and_a_gpu():
    seeds, steps = torch.tensor([3, 2**40 + 9]), torch.tensor([0, 17])
    assert torch.equal(
        uniforms(seeds, steps, 2, 4096), uniforms(seeds.cuda(), steps.cuda(), 2, 4096).cpu()
    )
    torch.testing.assert_close(
        standard_normals(seeds.cuda(), steps.cuda(), 1, 4096).cpu(),
        standard_normals(seeds, steps, 1, 4096),
        rtol=1e-12,
        atol=1e-12,
    )


def test_many_vit_problems_share_a_call_on_a_gpu():
    server, updates = _cuda_setting("vit", victims=8)
    engine = engine_for(make_attack("dia"), server, updates, device="cuda")
    assert engine.batching == "folded" and engine.loss.batching.chunk >= 8
