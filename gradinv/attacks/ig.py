"""Inverting Gradients (Geiping et al., NeurIPS 2020): cosine gradient matching with a TV prior.

The paper's recipe is the shared machinery's default: cosine distance over all layers, total
variation, Adam (lr 0.1) on signed image gradients, a box to valid pixels, step decay x0.1 at
3/8, 5/8 and 7/8 of the iterations, and restarts scored by the gradient distance.
"""

from gradinv.attacks.gradient_inversion import GradientInversion


class InvertingGradients(GradientInversion):
    """IG exactly as the shared machinery defines it; the config names the paper's values."""
