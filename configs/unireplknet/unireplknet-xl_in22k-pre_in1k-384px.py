# UniRepLKNet-XL, ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 384x384:
# evaluation of the released classifier.
# Paper results and weights: configs/metafile_unireplknet.yml (unireplknet-xl_in22k-pre_in1k-384px)
#
# The official test at 384 (datasets.py, main.py --input_size 384): the whole image warped
# to 384x384 (PIL bicubic, no crop), ImageNet mean / std.
# Convert the released file to this layout once (docs/unireplknet.md), then
#   bash tools/dist_test.sh configs/unireplknet/unireplknet-xl_in22k-pre_in1k-384px.py CONVERTED.pth 8  # noqa: E501
# The official training commands (AILab-CVC/UniRepLKNet Image/README.md) are summarised in
# docs/unireplknet.md; this config has no training part.
_base_ = [
    './_base_/unireplknet_classifier.py',
    './_base_/imagenet_eval_384px.py',
]

model = dict(backbone=dict(arch='XL'), head=dict(in_channels=2048))
