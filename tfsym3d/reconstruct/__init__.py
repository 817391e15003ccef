"""Photos -> depth, normals, albedo, meshes and animations: the library of `tfsym3d
reconstruct` (tfsym3d.commands.reconstruct).

    from tfsym3d.reconstruct import reconstruct_images
    maps = reconstruct_images(model, images)   # images [B, S, S, 3] in [0, 1] -> numpy

Modules, one job each:
  files      the run over files and folders into one output folder (`reconstruct_files`)
  inputs     finding image files, naming outputs, face and centre crops
  inference  Reconstructor: the model's outputs, the symmetry plane and animation frames
  pictures   colour maps, normal maps, confidence heat maps, the contact sheet row
  mesh       the canonical depth as a mesh (OBJ, GLB)
  outputs    the files of one image, GIFs and the index.html page
"""

from tfsym3d.reconstruct.inference import Reconstructor, reconstruct_images

__all__ = ["Reconstructor", "reconstruct_images"]
