# RepLKNet-31B, ImageNet-1K from scratch at 224x224: the official recipe.
# Paper results and weights: configs/metafile_imagenet.yml (replknet-31B_32xb64_in1k)
#
# Official command (README, "Pretrain RepLKNet-31B on ImageNet-1K"): 4 nodes x 8 GPUs x 64
# images = global batch 2048, --drop_path 0.5 --lr 4e-3 --warmup_epochs 10 --epochs 300
# --model_ema true. On 8 GPUs keep the global batch with gradient accumulation, as the
# README's single-machine command does (--update_freq 4):
#   bash tools/dist_train.sh configs/imagenet/replknet-31B_32xb64_in1k.py 8 \
#     --cfg-options optim_wrapper.accumulative_counts=4
# Test the released model (the mmpretrain-layout file, docs/imagenet.md):
#   bash tools/dist_test.sh configs/imagenet/replknet-31B_32xb64_in1k.py CKPT 8
_base_ = [
    './_base_/replknet_classifier.py',
    './_base_/imagenet_224px.py',
    './_base_/schedule_adamw_cosine_ema.py',
]

model = dict(backbone=dict(arch='31B', drop_path_rate=0.5), head=dict(in_channels=1024))
train_dataloader = dict(batch_size=64)  # x 32 GPUs = 2048
