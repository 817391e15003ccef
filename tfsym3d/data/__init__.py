"""Data: tf.data pipelines and the synthetic dataset generator."""

from tfsym3d.data.folder import SkipCounter, image_dataset, list_images, paired_dataset, split_dir

__all__ = ["SkipCounter", "image_dataset", "list_images", "paired_dataset", "split_dir"]
