"""gradinv: measure how much private training data leaks through federated-learning gradients."""

__version__ = "0.1.0"
