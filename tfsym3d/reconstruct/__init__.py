"""Photos -> depth, normals, albedo, meshes and animations: `tfsym3d reconstruct` and its
Python API.

    from tfsym3d.reconstruct import reconstruct_images
    maps = reconstruct_images(model, images)   # images [B, S, S, 3] in [0, 1] -> numpy

Modules, one job each:
  cli        the command: flags, the run over files and folders (`run`)
  inputs     finding image files, naming outputs, face and centre crops
  inference  Reconstructor: the model's outputs, the symmetry plane and animation frames
  pictures   colour maps, normal maps, confidence heat maps, the contact sheet row
  mesh       the canonical depth as a mesh (OBJ, GLB)
  outputs    the files of one image, GIFs and the index.html page
"""

from tfsym3d.reconstruct.inference import Reconstructor, reconstruct_images

__all__ = ["Reconstructor", "reconstruct_images"]
