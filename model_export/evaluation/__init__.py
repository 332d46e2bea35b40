"""Evaluation: whether generated datasets, model packages and adaptations are good: the dataset report and its
change-detection usefulness test, the segmentation judge, map-following, held-out reconstruction, the model card's
figures and the verdict of the package checks."""
