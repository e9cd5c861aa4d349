# UniRepLKNet-F, ImageNet-1K, 224x224: evaluation of the released classifier.
# Paper results and weights: configs/metafile_unireplknet.yml (unireplknet-f_in1k)
#
# The official test (datasets.py, main.py --input_size 224, crop_pct 224 / 256): the short
# side resized to 256 (PIL bicubic), centre crop 224, ImageNet mean / std.
# Convert the released file to this layout once (docs/unireplknet.md), then
#   bash tools/dist_test.sh configs/unireplknet/unireplknet-f_in1k.py CONVERTED.pth 8
# The official training commands (AILab-CVC/UniRepLKNet Image/README.md) are summarised in
# docs/unireplknet.md; this config has no training part.
_base_ = [
    './_base_/unireplknet_classifier.py',
    './_base_/imagenet_eval_224px.py',
]

model = dict(backbone=dict(arch='F'), head=dict(in_channels=384))
