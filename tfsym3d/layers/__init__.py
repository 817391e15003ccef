"""Keras layers of tfsym3d: the factor networks and the confidence network."""

from tfsym3d.layers.networks import ConfNet, EDDeconv, Encoder

__all__ = ["ConfNet", "EDDeconv", "Encoder"]
