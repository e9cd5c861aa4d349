# COCO instance segmentation with the DETR-style augmentation of the official RepLKNet
# Cascade Mask R-CNN models: flip, then either a multi-scale resize (shorter side 480-800) or
# resize (400-600) -> random crop (384-600) -> multi-scale resize. 1 image per GPU.
# (The official mmdet 2.x configs wrap the two policies in AutoAugment; mmdet 3.x spells the
# same uniform choice RandomChoice, as in its own ConvNeXt/Swin ports of this recipe.)
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

multi_scales = [(480, 1333), (512, 1333), (544, 1333), (576, 1333), (608, 1333),
                (640, 1333), (672, 1333), (704, 1333), (736, 1333), (768, 1333),
                (800, 1333)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize',
                     scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop',
                     crop_type='absolute_range',
                     crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True),
            ],
        ]),
    dict(type='PackDetInputs'),
]

# CheckedCocoDataset (replk_mm.datasets.coco_checked) validates every annotation; COCO itself
# has a few sub-pixel boxes, which are skipped with a warning (mmdet drops them silently).
train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    dataset=dict(
        type='CheckedCocoDataset', invalid_annotations='skip', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='CheckedCocoDataset', invalid_annotations='skip'))
test_dataloader = val_dataloader
