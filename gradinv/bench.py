"""``python -m gradinv.bench``: how fast attacks run, one by one, vectorized, and against a plain loop.

Per cell (architecture x dataset x attack) it reports seconds per iteration of one attack
through the full framework (Trainer, progress bar, CSV logging), attack-iterations per second
for 1, 8 and 32 attacks run vectorized and for 32 run one by one, and the floor: a plain torch
loop doing one attack's math; with ``--repeats`` each column is the median of several runs. A
benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.objectives import cosine_distance
from gradinv.attacks.regularizers import total_variation
from gradinv.cli import CONFIG_DIR
from gradinv.defenses.base import NoDefense
from gradinv.errors import instantiate
from gradinv.federated.client import FederatedClient
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.build import build_model
from gradinv.models.dropout import active_sites, mask_key
from gradinv.models.stochastic import randomness_shapes

COUNTS = (1, 8, 32)
#: The grid's architectures, and the DIA authors' own ViT cell (their setting, from gradinv alone).
DEFAULT_CELLS = "mlp:mnist:40,mlp:mnist:40:dia,cnn:cifar10:20,vit:cifar10:20:dia,resnet18:cifar10:2"


def _config(cell: dict[str, Any], *overrides: str) -> DictConfig:
    """The run config of a cell, composed by Hydra exactly as ``gradinv/main.py`` would."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=[
            f"model={cell['model']}", f"dataset={cell['dataset']}", f"attack={cell['attack']}",
            f"model.dropout={cell['dropout']}", f"trainer.accelerator={cell['device'].type}",
            "logger=none", "attack.log_psnr_every=0", *overrides,
        ])


def _setting(cfg: DictConfig, device: torch.device):
    """Server view and shared updates of the config's victims, as a run would make them."""
    data = instantiate(cfg.dataset)
    net = build_model(cfg.model, data.spec, seed=0)
    client = FederatedClient(net, NoDefense(), **cfg.client).to(device)
    server = ServerView.of(net, data.spec, client.batch_statistics)
    updates = [client.share(victim)[0] for victim in data.victims(seed=0)]
    return server, updates


def attack_seconds(cell: dict[str, Any], victims: int, vectorize: bool, iterations: int) -> float:
    """Wall time of ``victims`` one-image attacks of ``iterations`` steps through the framework
    (the configured Trainer with its progress bar, and a CSV logger receiving every step)."""
    cfg = _config(
        cell, f"dataset.num_victims={victims}", "dataset.batch_size=1",
        f"attack.iterations={iterations}", f"attack.vectorize={vectorize}",
        f"attack.per_call={cell.get('per_call') or 'null'}",
    )
    server, updates = _setting(cfg, cell["device"])
    attack = instantiate(cfg.attack)
    with tempfile.TemporaryDirectory() as log_dir:

        def make_trainer(callbacks: list[L.Callback]) -> L.Trainer:
            return instantiate(cfg.trainer, logger=CSVLogger(log_dir), callbacks=callbacks, max_epochs=1)

        started = time.perf_counter()
        attack.reconstruct(server, updates, AttackRuntime(seed=0, make_trainer=make_trainer))
        return time.perf_counter() - started


def plain_loop_seconds(cell: dict[str, Any], iterations: int) -> float:
    """Seconds per iteration of one attack as a bare torch loop: the framework's floor. IG's
    math, plus for ``attack=dia`` one learned mask per active dropout site (DIA's)."""
    server, (update,) = _setting(_config(cell, "dataset.batch_size=1"), cell["device"])
    model = server.model.eval()
    device = cell["device"]
    lo, hi = server.spec.pixel_bounds(torch.empty(0, device=device))
    images = torch.randn(1, *server.spec.shape, device=device, requires_grad=True)
    sites = active_sites(model) if cell["attack"] == "dia" else {}
    shapes = randomness_shapes(model, (1, *server.spec.shape), sites) if sites else {}
    rates = {mask_key(name): site.p for name, site in sites.items()}
    masks = {
        key: torch.bernoulli(torch.full(shapes[key], 1 - p, device=device)).requires_grad_()
        for key, p in rates.items()
    }
    learned = [images, *masks.values()]
    optimizer = torch.optim.Adam(learned, lr=0.1)
    started = time.perf_counter()
    for _ in range(iterations):
        grads = parameter_gradients(model, images, update.labels, buffers=masks, create_graph=True)
        loss = cosine_distance(grads, update.gradients) + 0.1 * total_variation(images)
        for key, mask in masks.items():
            loss = loss + 1e-4 * (1 - mask.mean() - rates[key]).abs()
        for tensor, grad in zip(learned, torch.autograd.grad(loss, learned)):
            tensor.grad = grad
        images.grad.sign_()
        optimizer.step()
        with torch.no_grad():
            images.copy_(torch.maximum(torch.minimum(images, hi), lo))
            for mask in masks.values():
                mask.clamp_(0, 1)
        float(loss)
    return (time.perf_counter() - started) / iterations


def measure_cell(cell: dict[str, Any], iterations: int) -> dict[str, float]:
    """One measurement of a row's columns; every count runs ``iterations`` steps."""
    row = {"plain_loop_s_per_it": plain_loop_seconds(cell, iterations)}
    # Per-iteration cost without the fixed set-up: the difference of a 2n- and an n-step attack.
    longer = attack_seconds(cell, 1, True, 2 * iterations)
    row["one_attack_s_per_it"] = (longer - attack_seconds(cell, 1, True, iterations)) / iterations
    for count in COUNTS:
        seconds = attack_seconds(cell, count, True, iterations)
        row[f"vectorized_{count}_it_per_s"] = count * iterations / seconds
    seconds = attack_seconds(cell, COUNTS[-1], False, iterations)
    row[f"one_by_one_{COUNTS[-1]}_it_per_s"] = COUNTS[-1] * iterations / seconds
    return row


def bench_cell(cell: dict[str, Any], iterations: int, repeats: int = 1) -> dict[str, Any]:
    """One table row: each column the median of ``repeats`` measurements (after a warm-up)."""
    attack_seconds(cell, 1, True, 2)
    runs = [measure_cell(cell, iterations) for _ in range(repeats)]
    row = {k: str(v) if k == "device" else v for k, v in cell.items()}
    row.update(iterations=iterations, repeats=repeats)
    row.update({key: statistics.median(run[key] for run in runs) for key in runs[0]})
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


def _cell(spec: str, attack: str, parser: argparse.ArgumentParser) -> tuple[str, str, int, str]:
    """'model:dataset:iterations[:attack]' with known options and a positive count."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit() or int(parts[2]) < 1:
        parser.error(f"--cells takes model:dataset:iterations[:attack] with a positive count, got '{spec}'")
    model, dataset, iterations, attack = (*parts, attack) if len(parts) == 3 else parts
    for group, name in (("model", model), ("dataset", dataset), ("attack", attack)):
        if not (CONFIG_DIR / group / f"{name}.yaml").is_file():
            known = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
            parser.error(f"--cells names {group} '{name}'; known: {', '.join(known)}")
    return model, dataset, int(iterations), attack


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default=DEFAULT_CELLS,
                        help="model:dataset:iterations[:attack], comma-separated")
    parser.add_argument("--attack", default="ig", help="the conf/attack option of cells that name none")
    parser.add_argument("--repeats", type=int, default=1, help="measurements per cell; columns are medians")
    parser.add_argument("--dropout", type=float, default=0.25, help="model.dropout of every cell")
    parser.add_argument("--accelerator", default="cpu", help="cpu | gpu | auto")
    parser.add_argument("--per-call", type=int, default=None,
                        help="attack.per_call of the vectorized runs (default: automatic)")
    parser.add_argument("--out", default="bench.json", help="JSON file for the rows")
    args = parser.parse_args(argv)
    cells = [_cell(spec, args.attack, parser) for spec in args.cells.split(",")]
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must lie in [0, 1), got {args.dropout}")
    if args.repeats < 1:
        parser.error(f"--repeats must be a positive count, got {args.repeats}")
    if args.per_call is not None and args.per_call < 1:
        parser.error(f"--per-call must be a positive count, got {args.per_call}")
    try:
        device = L.Fabric(accelerator=args.accelerator, devices=1).device
    except (RuntimeError, ValueError) as error:
        parser.error(f"--accelerator {args.accelerator} is not available here ({error}); use cpu or auto")
    rows = []
    for model, dataset, iterations, attack in cells:
        cell = dict(
            model=model, dataset=dataset, attack=attack, dropout=args.dropout, device=device,
            per_call=args.per_call,
        )
        rows.append(bench_cell(cell, iterations, args.repeats))
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    hardware = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}"
    Path(args.out).write_text(json.dumps({"hardware": hardware, "rows": rows}, indent=2))
    print(f"\n{hardware}\n{markdown(rows)}")
    return rows


if __name__ == "__main__":
    main()
