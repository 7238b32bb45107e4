"""``python -m gradinv.bench``: how fast attacks run, one by one, stepped together, and against floors.

Per cell (architecture x dataset x attack) it reports seconds per iteration of one attack
through the full framework (Trainer, progress bar, CSV logging); attack-iterations per second
for each count of attacks stepped together (``--counts``), through the framework with its
set-up, and the seconds of one step of them alone (after a warm-up: on a GPU, the step is a
replayed CUDA graph), and for ``--one-by-one`` attacks run one fit each; what one step dispatches (aten operations that are kernels on a GPU, and host
reads) for one attack and for the largest count; the floors: a plain torch loop doing one
attack's math, the same loop captured as a CUDA graph (on a GPU), and the FLOP floor (one
problem-step's FLOPs over the device's measured float32 matrix rate). With ``--repeats`` each
timed column is the median of several runs. A benchmark, not a test: numbers depend on the
machine and its load.
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
from torch.utils.flop_counter import FlopCounterMode

from gradinv.attacks.base import AttackRuntime, ServerView
from gradinv.attacks.cuda_graph import CapturedStep, warm_up
from gradinv.attacks.engine import InversionEngine
from gradinv.attacks.objectives import cosine_distance
from gradinv.attacks.regularizers import total_variation
from gradinv.cli import CONFIG_DIR
from gradinv.defenses.base import NoDefense
from gradinv.device import describe, run_device
from gradinv.dispatch_census import DispatchCensus
from gradinv.errors import ConfigError, instantiate
from gradinv.federated.gradients import parameter_gradients
from gradinv.models.build import build_model
from gradinv.models.dropout import active_sites, mask_key
from gradinv.models.stochastic import randomness_shapes

#: The grid's architectures, and the DIA authors' own ViT cell (their setting, from gradinv alone).
DEFAULT_CELLS = "mlp:mnist:40,mlp:mnist:40:dia,cnn:cifar10:20,vit:cifar10:20:dia,resnet18:cifar10:2"
DEFAULT_COUNTS = "1,8,32"
CENSUS_WARM_UP = 3  # steps before the counted one (a CUDA graph is captured after 3)
SAMPLE_IMAGES = 128  # the shipped samples: larger counts are victims x restarts


def _config(cell: dict[str, Any], *overrides: str) -> DictConfig:
    """The run config of a cell, composed by Hydra exactly as ``gradinv/main.py`` would."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                f"model={cell['model']}",
                f"dataset={cell['dataset']}",
                f"attack={cell['attack']}",
                f"model.dropout={cell['dropout']}",
                f"trainer.accelerator={cell['accelerator']}",
                "logger=none",
                "attack.log_psnr_every=0",
                "dataset.batch_size=1",
                f"attack.per_call={cell.get('per_call') or 'null'}",
                f"attack.cuda_graph={cell.get('cuda_graph', 'auto')}",
                *overrides,
            ],
        )


def _setting(cfg: DictConfig, device: torch.device):
    """Server view and shared updates of the config's victims, as a run would make them."""
    data = instantiate(cfg.dataset)
    net = build_model(cfg.model, data.spec, seed=0)
    client = instantiate(cfg.client, model=net, defense=NoDefense()).to(device)
    server = ServerView.of(net, data.spec, client.batch_statistics)
    updates = [client.share(victim)[0] for victim in data.victims(seed=0)]
    return server, updates


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _problems(count: int) -> list[str]:
    """Overrides for ``count`` one-image problems: victims of the shipped samples, then restarts."""
    victims = min(count, SAMPLE_IMAGES)
    return [f"dataset.num_victims={victims}", f"attack.restarts={count // victims}"]


def attack_seconds(cell: dict[str, Any], problems: int, vectorize: bool, iterations: int) -> float:
    """Wall time of ``problems`` one-image attacks of ``iterations`` steps through the framework
    (the configured Trainer with its progress bar, and a CSV logger receiving every step)."""
    cfg = _config(
        cell,
        *_problems(problems),
        f"attack.optim.iterations={iterations}",
        f"attack.vectorize={vectorize}",
    )
    server, updates = _setting(cfg, cell["device"])
    attack = instantiate(cfg.attack)
    with tempfile.TemporaryDirectory() as log_dir:

        def make_trainer(callbacks: list[L.Callback]) -> L.Trainer:
            return instantiate(
                cfg.trainer, logger=CSVLogger(log_dir), callbacks=callbacks, max_epochs=1
            )

        _synchronize(cell["device"])
        started = time.perf_counter()
        attack.reconstruct(server, updates, AttackRuntime(seed=0, make_trainer=make_trainer))
        _synchronize(cell["device"])
        return time.perf_counter() - started


def _engine(cell: dict[str, Any], count: int) -> InversionEngine:
    """The engine of ``count`` attacks of the cell, stepped together, as a fit would build it."""
    cfg = _config(cell, *_problems(count))
    server, updates = _setting(cfg, cell["device"])
    attack = instantiate(cfg.attack)
    problems = [
        attack.problem(server, v, r, u, 0)
        for v, u in enumerate(updates)
        for r in range(attack.restarts)
    ]
    return InversionEngine(attack, server, problems, cell["device"])


def step_seconds(cell: dict[str, Any], count: int, steps: int) -> float:
    """Seconds per engine step of ``count`` attacks stepped together, after a warm-up (on a GPU:
    the CUDA graph captured), without the Trainer and the set-up: what a long attack costs."""
    engine = _engine(cell, count)
    for _ in range(5):
        engine.step()
    _synchronize(cell["device"])
    started = time.perf_counter()
    for _ in range(steps):
        engine.step()
    _synchronize(cell["device"])
    return (time.perf_counter() - started) / steps


def step_census(cell: dict[str, Any], count: int) -> dict[str, Any]:
    """What one step of ``count`` attacks stepped together dispatches (after a warm-up), eager."""
    engine = _engine({**cell, "cuda_graph": "false"}, count)
    for _ in range(CENSUS_WARM_UP):
        engine.step()
    with DispatchCensus() as census:
        engine.step()
    return {
        "kernels": census.kernels,
        "operations": census.operations,
        "host_reads": census.host_reads,
        "path": engine.batching,
    }


def flop_floor(cell: dict[str, Any], matrix_flops_per_s: float) -> dict[str, float]:
    """One problem-step's FLOPs (forward, double backward, update) and the time they need at the
    device's measured float32 matrix rate: no implementation of the same math runs faster."""
    engine = _engine({**cell, "cuda_graph": "false"}, 1)
    with FlopCounterMode(display=False) as flops:
        engine.step()
    total = flops.get_total_flops()
    return {
        "gflop_per_problem_step": total / 1e9,
        "flop_floor_s_per_problem_step": total / matrix_flops_per_s,
    }


def matrix_rate(device: torch.device, size: int = 4096) -> float:
    """The device's float32 matrix-product rate (FLOP/s), measured: the median of 5 products."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    times = []
    for _ in range(6):
        _synchronize(device)
        started = time.perf_counter()
        a @ b
        _synchronize(device)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times[1:])


def plain_loop_seconds(cell: dict[str, Any], iterations: int, graphed: bool = False) -> float:
    """Seconds per iteration of one attack as a bare torch loop: the framework's floor. IG's
    math, plus for ``attack=dia`` one learned mask per active dropout site (DIA's); with
    ``graphed`` (CUDA only) each step is a replayed CUDA graph, without the loss read per step."""
    server, (update,) = _setting(_config(cell), cell["device"])
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
    optimizer = torch.optim.Adam(learned, lr=0.1, capturable=graphed)

    def step() -> torch.Tensor:
        grads = parameter_gradients(model, images, update.labels, buffers=masks, create_graph=True)
        loss = cosine_distance(grads, update.gradients) + 1e-5 * total_variation(images[None])[0]
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
        return loss

    run = step
    if graphed:
        for _ in range(3):
            warm_up(step)
        run = CapturedStep(step).replay
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(iterations):
        loss = run()
        if not graphed:
            float(loss)
    _synchronize(device)
    return (time.perf_counter() - started) / iterations


def measure_cell(
    cell: dict[str, Any], iterations: int, counts: list[int], one_by_one: int
) -> dict[str, float]:
    """One measurement of a row's timed columns; every count runs ``iterations`` steps."""
    row = {"plain_loop_s_per_it": plain_loop_seconds(cell, iterations)}
    if cell["device"].type == "cuda":
        row["plain_loop_graphed_s_per_it"] = plain_loop_seconds(cell, iterations, graphed=True)
    # Per-iteration cost without the fixed set-up: the difference of a 2n- and an n-step attack.
    longer = attack_seconds(cell, 1, True, 2 * iterations)
    row["one_attack_s_per_it"] = (longer - attack_seconds(cell, 1, True, iterations)) / iterations
    for count in counts:
        seconds = attack_seconds(cell, count, True, iterations)
        row[f"vectorized_{count}_it_per_s"] = count * iterations / seconds
        row[f"step_{count}_s"] = step_seconds(cell, count, iterations)
    if one_by_one:
        seconds = attack_seconds(cell, one_by_one, False, iterations)
        row[f"one_by_one_{one_by_one}_it_per_s"] = one_by_one * iterations / seconds
    return row


def bench_cell(
    cell: dict[str, Any],
    iterations: int,
    counts: list[int],
    one_by_one: int,
    repeats: int = 1,
    rate: float | None = None,
) -> dict[str, Any]:
    """One table row: each timed column the median of ``repeats`` measurements (after a warm-up),
    the step census for 1 and ``max(counts)`` attacks, and the FLOP floor at ``rate``."""
    attack_seconds(cell, 1, True, 2)
    runs = [measure_cell(cell, iterations, counts, one_by_one) for _ in range(repeats)]
    row = {k: str(v) if k == "device" else v for k, v in cell.items()}
    row.update(iterations=iterations, repeats=repeats)
    row.update({key: statistics.median(run[key] for run in runs) for key in runs[0]})
    for count in sorted({1, max(counts)}):
        row.update({f"census_{count}_{k}": v for k, v in step_census(cell, count).items()})
    if rate is not None:
        row.update(flop_floor(cell, rate))
    return row


def markdown(rows: list[dict[str, Any]], counts: list[int], one_by_one: int) -> str:
    """The speed table and the census table as Markdown, as docs/speed.md shows them."""
    most = max(counts)
    heads = ["model", "dataset", "attack", "p", "s/it, 1 attack", "s/it, plain loop"]
    heads += (
        ["s/it, plain loop graphed"]
        if any("plain_loop_graphed_s_per_it" in r for r in rows)
        else []
    )
    heads += [f"it/s x{c}" for c in counts]
    if one_by_one:
        heads += [f"it/s x{one_by_one} one by one", f"x{one_by_one} speed-up"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        cells = [
            r["model"],
            r["dataset"],
            r["attack"],
            str(r["dropout"]),
            f"{r['one_attack_s_per_it']:.4f}",
            f"{r['plain_loop_s_per_it']:.4f}",
        ]
        if "s/it, plain loop graphed" in heads:
            cells.append(f"{r.get('plain_loop_graphed_s_per_it', float('nan')):.4f}")
        cells += [f"{r[f'vectorized_{c}_it_per_s']:.1f}" for c in counts]
        if one_by_one:
            alone = r[f"one_by_one_{one_by_one}_it_per_s"]
            together = r.get(f"vectorized_{one_by_one}_it_per_s")
            cells += [f"{alone:.1f}", f"{together / alone:.1f}x" if together else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    steps = [
        "",
        "| model | attack | " + " | ".join(f"ms per step x{c}" for c in counts) + " |",
        "|" + "---|" * (2 + len(counts)),
    ]
    for r in rows:
        steps.append(
            f"| {r['model']} | {r['attack']} | "
            + " | ".join(f"{1000 * r[f'step_{c}_s']:.2f}" for c in counts)
            + " |"
        )
    census = [
        "",
        f"| model | attack | path x1 / x{most} | kernels per step x1 | kernels per step x{most} "
        f"| host reads per step x{most} | GFLOP per problem-step | FLOP floor s per problem-step |",
        "|" + "---|" * 8,
    ]
    for r in rows:
        small, large = (r.get(f"census_{n}_kernels") for n in (1, most))
        census.append(
            f"| {r['model']} | {r['attack']} | {r.get('census_1_path')} / {r.get(f'census_{most}_path')} "
            f"| {small} | {large} | {r.get(f'census_{most}_host_reads')} "
            f"| {r.get('gflop_per_problem_step', float('nan')):.3f} "
            f"| {r.get('flop_floor_s_per_problem_step', float('nan')):.2e} |"
        )
    return "\n".join(lines + steps + census)


def _cell(spec: str, attack: str, parser: argparse.ArgumentParser) -> tuple[str, str, int, str]:
    """'model:dataset:iterations[:attack]' with known options and a positive count."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[2].isdigit() or int(parts[2]) < 1:
        parser.error(
            f"--cells takes model:dataset:iterations[:attack] with a positive count, got '{spec}'"
        )
    model, dataset, iterations, attack = (*parts, attack) if len(parts) == 3 else parts
    for group, name in (("model", model), ("dataset", dataset), ("attack", attack)):
        if not (CONFIG_DIR / group / f"{name}.yaml").is_file():
            known = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
            parser.error(f"--cells names {group} '{name}'; known: {', '.join(known)}")
    return model, dataset, int(iterations), attack


def _counts(text: str, parser: argparse.ArgumentParser) -> list[int]:
    """Positive counts; beyond the shipped samples, multiples of them (victims x restarts)."""
    try:
        counts = [int(c) for c in text.split(",")]
    except ValueError:
        counts = []
    if (
        not counts
        or min(counts) < 1
        or any(c > SAMPLE_IMAGES and c % SAMPLE_IMAGES for c in counts)
    ):
        parser.error(
            f"--counts takes positive counts, comma-separated, each at most {SAMPLE_IMAGES} or a "
            f"multiple of it (victims x restarts), got '{text}'"
        )
    return counts


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells", default=DEFAULT_CELLS, help="model:dataset:iterations[:attack], comma-separated"
    )
    parser.add_argument(
        "--attack", default="ig", help="the conf/attack option of cells that name none"
    )
    parser.add_argument(
        "--counts",
        default=DEFAULT_COUNTS,
        help="attacks stepped together, comma-separated (beyond 128: victims x restarts)",
    )
    parser.add_argument(
        "--one-by-one", type=int, default=32, help="attacks run one fit each (0: none)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="measurements per cell; columns are medians"
    )
    parser.add_argument("--dropout", type=float, default=0.25, help="model.dropout of every cell")
    parser.add_argument("--accelerator", default="cpu", help="cpu | gpu | auto")
    parser.add_argument(
        "--per-call",
        type=int,
        default=None,
        help="attack.per_call of the vectorized runs (default: automatic)",
    )
    parser.add_argument(
        "--cuda-graph",
        default="auto",
        choices=("auto", "false"),
        help="attack.cuda_graph of the timed runs",
    )
    parser.add_argument("--out", default="bench.json", help="JSON file for the rows")
    args = parser.parse_args(argv)
    cells = [_cell(spec, args.attack, parser) for spec in args.cells.split(",")]
    counts = _counts(args.counts, parser)
    if not 0 <= args.dropout < 1:
        parser.error(f"--dropout must lie in [0, 1), got {args.dropout}")
    if args.repeats < 1:
        parser.error(f"--repeats must be a positive count, got {args.repeats}")
    if args.per_call is not None and args.per_call < 1:
        parser.error(f"--per-call must be a positive count, got {args.per_call}")
    if args.one_by_one < 0:
        parser.error(f"--one-by-one must be a count, got {args.one_by_one}")
    try:
        device = run_device(args.accelerator)
    except ConfigError as error:
        parser.error(str(error))
    rate = matrix_rate(device)
    rows = []
    for model, dataset, iterations, attack in cells:
        cell = dict(
            model=model,
            dataset=dataset,
            attack=attack,
            dropout=args.dropout,
            device=device,
            accelerator=args.accelerator,
            per_call=args.per_call,
            cuda_graph=args.cuda_graph,
        )
        rows.append(bench_cell(cell, iterations, counts, args.one_by_one, args.repeats, rate))
        print(json.dumps(rows[-1]), flush=True)
    hardware = f"{platform.processor() or platform.machine()}, {describe(device)}"
    hardware += f", float32 matrix rate {rate / 1e12:.2f} TFLOP/s"
    Path(args.out).write_text(json.dumps({"hardware": hardware, "rows": rows}, indent=2))
    print(f"\n{hardware}\n{markdown(rows, counts, args.one_by_one)}")
    return rows


if __name__ == "__main__":
    main()
