"""Measures of generated images in numpy: PSNR and SSIM inside a region, seams on tile boundaries and around an inpainted change."""

from .measures import MIN_REGION_PX, psnr, region_consistency, ssim_map
from .seams import ring_seam_score, seam_score, tile_edges

__all__ = ["MIN_REGION_PX", "psnr", "region_consistency", "ring_seam_score", "seam_score", "ssim_map", "tile_edges"]
