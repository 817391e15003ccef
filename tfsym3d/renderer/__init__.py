"""Differentiable rendering in pure TensorFlow: camera, rasterizer, warps."""

from tfsym3d.renderer.camera import (
                                     euler_rotation,
                                     intrinsics,
                                     inverse_transform_points,
                                     project,
                                     split_view,
                                     transform_points,
)
from tfsym3d.renderer.rasterize import interpolate, rasterize
from tfsym3d.renderer.shading import lambertian
from tfsym3d.renderer.warp import (
                                     Renderer,
                                     depth_to_3d_grid,
                                     get_normal_from_depth,
                                     grid_3d_to_2d,
                                     grid_faces,
                                     grid_sample,
)

__all__ = [
    "Renderer", "depth_to_3d_grid", "euler_rotation", "get_normal_from_depth",
    "grid_3d_to_2d", "grid_faces", "grid_sample", "interpolate", "intrinsics",
    "inverse_transform_points",
    "lambertian", "project", "rasterize", "split_view", "transform_points",
]
