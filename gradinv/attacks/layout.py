"""Where a problem's optimized tensors sit: one flat row per problem, one matrix for them all.

An attack optimizes each problem's candidate images and its learned variables (``Variable``:
masks, label logits). All problems of a fit share one layout, so their tensors live in a
single (problems, columns) matrix ``theta``: one gradient call returns every tensor's gradient,
one elementwise Adam moves them all, and per-column vectors say what each column is (its
step-size group, its bounds, whether its gradient is signed). ``views`` cuts ``theta`` back
into each tensor, stacked along the problems.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from gradinv.attacks.variables import Variable

IMAGES = "images"


@dataclass(frozen=True)
class Column:
    """One tensor of a problem: its key and its shape (its entries follow the previous column's)."""

    key: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(torch.Size(self.shape).numel())


class Layout:
    """The row of one problem: its images, then each learned variable, flattened in order.

    ``lrs`` lists the step size of each group as torch's Adam would group them: the images
    first, then one group per distinct variable step size (``Variable.lr``, the images' when
    None), in the order they first appear.
    """

    def __init__(self, images: torch.Tensor, variables: dict[str, Variable], lr: float) -> None:
        self.variables = {key: _template(v) for key, v in variables.items()}
        self.columns = [Column(IMAGES, tuple(images.shape))]
        self.columns += [Column(key, tuple(v.value.shape)) for key, v in variables.items()]
        self.lrs: list[float] = [lr]
        self.groups: list[int] = [0]  # per column
        by_lr: dict[float, int] = {}
        for variable in variables.values():
            step = variable.lr or lr
            if step not in by_lr:
                by_lr[step] = len(self.lrs)
                self.lrs.append(step)
            self.groups.append(by_lr[step])

    def signature(self) -> tuple:
        """What must agree for two problems to share a layout."""
        return tuple((c.key, c.shape) for c in self.columns), tuple(self.lrs), tuple(self.groups)

    def stack(self, rows: list[tuple[torch.Tensor, dict[str, Variable]]]) -> torch.Tensor:
        """``theta``: each problem's images and variables flattened into its row."""
        flat = [
            torch.cat(
                [
                    images.reshape(-1),
                    *(variables[c.key].value.reshape(-1) for c in self.columns[1:]),
                ]
            )
            for images, variables in rows
        ]
        return torch.stack(flat)

    def views(self, theta: torch.Tensor) -> tuple[torch.Tensor, dict[str, Variable]]:
        """The images (problems, batch, C, H, W) and the variables, each value a view of ``theta``
        stacked along the problems (one ``split``: its backward is one concatenation)."""
        parts = torch.split(theta, [c.size for c in self.columns], dim=1)
        shaped = [part.view(theta.shape[0], *c.shape) for part, c in zip(parts, self.columns)]
        variables = {
            c.key: replace(self.variables[c.key], value=value)
            for c, value in zip(self.columns[1:], shaped[1:])
        }
        return shaped[0], variables

    def column_vector(
        self, values: dict[str, torch.Tensor | float], default: float
    ) -> torch.Tensor:
        """A vector over the row's columns: each tensor's value (broadcast to its shape) or ``default``."""
        pieces = []
        for column in self.columns:
            value = values.get(column.key, default)
            pieces.append(
                torch.as_tensor(value, dtype=torch.float64).expand(column.shape).reshape(-1)
            )
        return torch.cat(pieces)


def _template(variable: Variable) -> Variable:
    """The variable's type and settings without its value (views of ``theta`` take its place)."""
    return replace(variable, value=torch.empty(0))
