"""Dataset helpers. Import `replk_mm.datasets.coco_checked` (needs mmdet) to register
`CheckedCocoDataset` in mmdet's DATASETS."""
