"""R-GAP's rank analysis: per layer, do its weight-gradient and forward constraints fix its input?

A layer's verdict is "full" when the rank of its stacked constraints equals its number of
unknowns (the input is determined), else "deficient" (a subspace of inputs is invisible).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLUMNS = (
    "layer",
    "unknowns",
    "weight_gradient_constraints",
    "forward_constraints",
    "rank",
    "verdict",
)


def rank_row(
    layer: str, unknowns: int, weight_gradient_constraints: int, forward_constraints: int, rank: int
) -> dict[str, Any]:
    """One row of the rank table: the constraints from the layer's weight gradient (dL/dW =
    delta x^T, one per weight) and from its forward pass (W x = z, one per known output unit)."""
    return {
        "layer": layer,
        "unknowns": unknowns,
        "weight_gradient_constraints": weight_gradient_constraints,
        "forward_constraints": forward_constraints,
        "rank": rank,
        "verdict": "full" if rank >= unknowns else "deficient",
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rank table as aligned plain text, one layer per line, input side first."""
    cells = [list(COLUMNS)] + [[str(row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells)
