"""Measures of generated images in numpy: PSNR and SSIM inside a region, and seams on tile boundaries."""

from .measures import MIN_REGION_PX, psnr, region_consistency, ssim_map
from .seams import seam_score, tile_edges

__all__ = ["MIN_REGION_PX", "psnr", "region_consistency", "seam_score", "ssim_map", "tile_edges"]
