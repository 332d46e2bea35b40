"""The networks (PyTorch modules only, no training): the VQ autoencoder and the mask-conditioned denoiser of the
model package, and the two judges' nets (land-cover segmentation, change detection)."""
