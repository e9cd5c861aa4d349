# CPU demo: a narrow RepLKNet (the 31B kernels 31-29-27-13, channels 32-64-128-256, blocks
# 1-1-2-1) + Cascade Mask R-CNN with the full-size head design (4conv1fc GIoU box heads,
# FCN mask head), narrowed, trained from scratch on the synthetic shapes dataset of
# replk_mm/datasets/synthetic/coco.py (make it with
# `python tools/dataset_converters/make_demo_data.py coco data/demo_coco`, or let
# tools/demo/det_demo.py do everything).
_base_ = [
    '../_base_/models/cascade_mask_rcnn_replknet_fpn.py',
    '../_base_/datasets/demo_coco_instance.py',
    '../_base_/schedules/demo_det_600it.py',
]

classes = ('circle', 'square', 'triangle')  # as in the dataset base
channels = [32, 64, 128, 256]
fpn_channels = 64
head_norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    backbone=dict(
        arch=dict(_delete_=True, large_kernel_sizes=[31, 29, 27, 13], layers=[1, 1, 2, 1],
                  channels=channels, small_kernel=5),
        drop_path_rate=0.,
        with_cp=False,
        norm_cfg=dict(type='BN', requires_grad=True)),
    neck=dict(in_channels=channels, out_channels=fpn_channels),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels),
    roi_head=dict(
        # sampling_ratio=2: a fixed 2x2 samples per RoI bin (0 = adaptive) keeps RoIAlign
        # cheap on the CPU.
        bbox_roi_extractor=dict(
            out_channels=fpn_channels, roi_layer=dict(sampling_ratio=2)),
        bbox_head=[
            dict(
                type='ConvFCBBoxHead',
                num_shared_convs=4,
                num_shared_fcs=1,
                in_channels=fpn_channels,
                conv_out_channels=32,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=len(classes),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                    target_stds=stds),
                reg_class_agnostic=False,
                reg_decoded_bbox=True,
                norm_cfg=head_norm_cfg,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                         [0.033, 0.033, 0.067, 0.067])
        ],
        mask_roi_extractor=dict(
            out_channels=fpn_channels, roi_layer=dict(sampling_ratio=2)),
        mask_head=dict(
            num_convs=2, in_channels=fpn_channels, conv_out_channels=fpn_channels,
            num_classes=len(classes))),
    # Few objects per small image: far fewer proposals and RoI samples than for COCO.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=[
            dict(
                assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou,
                              min_pos_iou=iou, match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type='RandomSampler', num=32, pos_fraction=0.25,
                             neg_pos_ub=-1, add_gt_as_proposals=True),
                mask_size=28,
                pos_weight=-1,
                debug=False) for iou in (0.5, 0.6, 0.7)
        ]),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=100), rcnn=dict(max_per_img=20)))
