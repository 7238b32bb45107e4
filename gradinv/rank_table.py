"""R-GAP's rank analysis from the command line (the table itself is ``gradinv.attacks.rank``).

``python -m gradinv.rank_table model=cnn6 dataset=cifar10`` takes the same Hydra overrides as
``gradinv/main.py``; it builds the model, lets the client share the exact gradient of the first
victim image, and prints per layer the unknowns, the weight-gradient and forward constraints,
the rank of the combined system and the verdict (full | deficient).
"""

from __future__ import annotations

from omegaconf import DictConfig

from gradinv.attacks.rank import format_table
from gradinv.attacks.rgap import invert
from gradinv.attacks.rgap_chain import read_chain
from gradinv.cli import entry_point
from gradinv.defenses.base import NoDefense
from gradinv.errors import instantiate
from gradinv.federated.client import FederatedClient
from gradinv.models.build import build_model


def rank_table(cfg: DictConfig) -> list[dict]:
    """The rank table of ``cfg.model`` at the first victim of ``cfg.dataset`` (exact gradient)."""
    dataset = instantiate(cfg.dataset)
    model = build_model(cfg.model, dataset.spec, int(cfg.seed))
    steps = read_chain(model, dataset.spec.shape)
    client = FederatedClient(model, NoDefense(), mode=cfg.client.mode, share_masks=True)
    update, _ = client.share(dataset.victims(int(cfg.seed))[0])
    _, table = invert(steps, update, update.labels[:1], dataset.spec.shape)
    return table


def print_rank_table(cfg: DictConfig) -> None:
    """Print the rank table of ``cfg``."""
    print(format_table(rank_table(cfg)))


main = entry_point(print_rank_table, "config")

if __name__ == "__main__":
    main()
