"""Reusable network layers (norms, padding kernels, building blocks of image networks)."""
