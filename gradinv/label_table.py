"""``python -m gradinv.label_table``: label inference accuracy on the shipped samples.

For each dataset x model x batch size it builds the untrained model and the victims of each
seed as a run would, shares their FedSGD updates with the labels withheld, and scores every
label inference method that applies (``gradinv.attacks.labels``) by the multiset label
accuracy that runs record; no reconstruction. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
from statistics import fmean

from hydra import compose, initialize_config_dir

from gradinv.attacks.base import ServerView
from gradinv.attacks.labels import LABEL_INFERENCE, infer_labels
from gradinv.cli import CONFIG_DIR
from gradinv.defenses.base import NoDefense
from gradinv.errors import ConfigError, instantiate
from gradinv.metrics.labels import label_multiset_accuracy
from gradinv.models.build import build_model


def accuracies(
    dataset: str, model: str, batch_size: int, seed: int, victims: int
) -> dict[str, float | None]:
    """Mean multiset label accuracy over the seed's victims, per method (None: not applicable)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                f"dataset={dataset}",
                f"model={model}",
                f"seed={seed}",
                "logger=none",
                f"dataset.batch_size={batch_size}",
                f"dataset.num_victims={victims}",
            ],
        )
    data = instantiate(cfg.dataset)
    net = build_model(cfg.model, data.spec, seed)
    client = instantiate(cfg.client, model=net, defense=NoDefense())
    server = ServerView.of(net, data.spec, client.batch_statistics)
    shared = [client.share(victim) for victim in data.victims(seed)]
    scores: dict[str, float | None] = {}
    for method in LABEL_INFERENCE:
        try:
            guesses = [infer_labels(server.model, data.spec.shape, u, method) for u, _ in shared]
        except ConfigError:
            scores[method] = None
            continue
        scores[method] = fmean(
            label_multiset_accuracy(record.labels, guess)
            for (_, record), guess in zip(shared, guesses)
        )
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "cifar10"])
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4, 8])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--victims", type=int, default=8)
    args = parser.parse_args(argv)
    print("| dataset | model | batch size | " + " | ".join(LABEL_INFERENCE) + " |")
    print("|---|---|---|" + "---|" * len(LABEL_INFERENCE))
    for dataset in args.datasets:
        for model in args.models:
            for batch_size in args.batch_sizes:
                runs = [accuracies(dataset, model, batch_size, s, args.victims) for s in args.seeds]
                cells = [
                    "—" if runs[0][m] is None else f"{fmean(r[m] for r in runs):.2f}"
                    for m in LABEL_INFERENCE
                ]
                row = f"| {dataset} | {model} | {batch_size} | " + " | ".join(cells) + " |"
                print(row, flush=True)


if __name__ == "__main__":
    main()
