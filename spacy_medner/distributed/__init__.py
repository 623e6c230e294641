"""Run `annotate` on a Ray cluster (the optional `ray` extra).

Importing this package does not import Ray; `annotate_ray` does, when called."""
from .ray_engine import annotate_ray

__all__ = ["annotate_ray"]
