"""``python -m gradinv.bench``: how fast attacks run, one by one, vectorized, and against a plain loop.

Per architecture x dataset it reports seconds per iteration of one attack through the full
framework (Trainer, progress bar, CSV logging), attack-iterations per second for 1, 8 and 32
attacks run vectorized and for 32 run one by one, and the floor: a plain torch loop doing one
attack's math. A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.objectives import cosine_distance, total_variation
from gradinv.defenses.base import NoDefense
from gradinv.federated.client import FederatedClient
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.build import build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
COUNTS = (1, 8, 32)


def _load(group: str, name: str, **overrides: Any):
    return OmegaConf.merge(OmegaConf.load(CONF / group / f"{name}.yaml"), overrides)


def _setting(model: str, dataset: str, dropout: float, victims: int, device: torch.device):
    """Server view and shared updates of ``victims`` one-image victims, as a run would make them."""
    data = instantiate(_load("dataset", dataset, num_victims=victims, batch_size=1))
    net = build_model(_load("model", model, dropout=dropout), data.spec, seed=0)
    server = ServerView(copy.deepcopy(net).to(device), data.spec)
    client = FederatedClient(net, NoDefense()).to(device)
    updates = [client.share(victim)[0] for victim in data.victims(seed=0)]
    return server, updates


def _runtime(device: torch.device, log_dir: str) -> AttackRuntime:
    def make_trainer(steps: int, callbacks: list[L.Callback]) -> L.Trainer:
        return L.Trainer(
            accelerator=device.type, devices=1, max_epochs=1, callbacks=callbacks,
            logger=CSVLogger(log_dir), enable_progress_bar=True, enable_checkpointing=False,
            enable_model_summary=False, log_every_n_steps=10,
        )

    return AttackRuntime(seed=0, make_trainer=make_trainer)


def attack_seconds(cell: dict[str, Any], victims: int, vectorize: bool, iterations: int) -> float:
    """Wall time of ``victims`` attacks of ``iterations`` steps each through the framework."""
    server, updates = _setting(cell["model"], cell["dataset"], cell["dropout"], victims, cell["device"])
    attack = instantiate(
        _load("attack", cell["attack"], iterations=iterations, vectorize=vectorize, log_psnr_every=0)
    )
    with tempfile.TemporaryDirectory() as log_dir:
        started = time.perf_counter()
        attack.reconstruct(server, updates, _runtime(cell["device"], log_dir))
        return time.perf_counter() - started


def plain_loop_seconds(cell: dict[str, Any], iterations: int) -> float:
    """Seconds per iteration of one IG attack as a bare torch loop: the framework's floor."""
    server, (update,) = _setting(cell["model"], cell["dataset"], cell["dropout"], 1, cell["device"])
    model = server.model.eval()
    lo, hi = server.spec.pixel_bounds(torch.empty(0, device=cell["device"]))
    images = torch.randn(1, *server.spec.shape, device=cell["device"], requires_grad=True)
    optimizer = torch.optim.Adam([images], lr=0.1)
    started = time.perf_counter()
    for _ in range(iterations):
        grads = parameter_gradients(model, images, update.labels, create_graph=True)
        loss = cosine_distance(grads, update.gradients) + 0.1 * total_variation(images)
        images.grad, = torch.autograd.grad(loss, [images])
        images.grad.sign_()
        optimizer.step()
        with torch.no_grad():
            images.copy_(torch.maximum(torch.minimum(images, hi), lo))
        float(loss)
    return (time.perf_counter() - started) / iterations


def bench_cell(cell: dict[str, Any], iterations: int) -> dict[str, Any]:
    """One table row; every count runs ``iterations`` steps (a warm-up attack runs first)."""
    attack_seconds(cell, 1, True, 2)
    row = {k: str(v) if k == "device" else v for k, v in cell.items()}
    row["iterations"] = iterations
    row["plain_loop_s_per_it"] = plain_loop_seconds(cell, iterations)
    row["one_attack_s_per_it"] = attack_seconds(cell, 1, True, iterations) / iterations
    for count in COUNTS:
        seconds = attack_seconds(cell, count, True, iterations)
        row[f"vectorized_{count}_it_per_s"] = count * iterations / seconds
    seconds = attack_seconds(cell, COUNTS[-1], False, iterations)
    row[f"one_by_one_{COUNTS[-1]}_it_per_s"] = COUNTS[-1] * iterations / seconds
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The table as Markdown, as README shows it."""
    head = (
        "| model | dataset | attack | p | s/it, 1 attack | s/it, plain loop | it/s x1 | it/s x8 "
        "| it/s x32 | it/s x32 one by one | x32 speed-up |\n|" + "---|" * 11
    )
    lines = [head]
    for r in rows:
        speedup = r["vectorized_32_it_per_s"] / r["one_by_one_32_it_per_s"]
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['attack']} | {r['dropout']} "
            f"| {r['one_attack_s_per_it']:.4f} | {r['plain_loop_s_per_it']:.4f} "
            f"| {r['vectorized_1_it_per_s']:.1f} | {r['vectorized_8_it_per_s']:.1f} "
            f"| {r['vectorized_32_it_per_s']:.1f} | {r['one_by_one_32_it_per_s']:.1f} | {speedup:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="mlp:mnist:10,resnet18:cifar10:2",
                        help="model:dataset:iterations, comma-separated")
    parser.add_argument("--attack", default="ig", help="a conf/attack option, e.g. dia")
    parser.add_argument("--dropout", type=float, default=0.25, help="model.dropout of every cell")
    parser.add_argument("--accelerator", default="cpu", help="cpu | gpu | auto")
    parser.add_argument("--out", default="bench.json", help="JSON file for the rows")
    args = parser.parse_args(argv)
    device = L.Fabric(accelerator=args.accelerator, devices=1).device
    rows = []
    for spec in args.cells.split(","):
        model, dataset, iterations = spec.split(":")
        cell = dict(model=model, dataset=dataset, attack=args.attack, dropout=args.dropout, device=device)
        rows.append(bench_cell(cell, int(iterations)))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    hardware = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}"
    Path(args.out).write_text(json.dumps({"hardware": hardware, "rows": rows}, indent=2))
    print(f"\n{hardware}\n{markdown(rows)}")
    return rows


if __name__ == "__main__":
    main()
