# The kernel-size study's ImageNet-1K pre-training (docs/kernel_ablation.md): RepLKNet-31B's
# width and depth (channels 128-256-512-1024, blocks 2-2-18-2), each config setting the kernels.
#
# Recipe: RepLKNet arXiv 2203.06717v1, Appendix A ("For training RepLKNet models (Sec. 4.2)"):
# 32 GPUs x 64 images (global batch 2048), 120 epochs, AdamW (momentum 0.9) with weight decay
# 0.05, lr 4e-3 with cosine annealing and a 10-epoch warm-up, RandAugment rand-m9-mstd0.5-inc1,
# label smoothing 0.1, mixup 0.8, CutMix 1.0, random erasing 0.25 and drop path 0.3. The
# paper mentions no EMA for these runs (it names EMA only for the fine-tunes), so there is none.
# Everything else (the data pipeline, AdamW's betas/eps, no weight decay on biases and norms,
# SyncBN) is the RepLKNet-31B ImageNet config, configs/imagenet/replknet-31B_32xb64_in1k.py,
# whose recipe the paper states is "the same configurations except the epoch number of 300
# and drop-path rate of 50%" (Appendix A).
#
# The UperNet configs next to these start from the checkpoint these runs write to
# work_dirs/<config name>/epoch_120.pth.
_base_ = '../../imagenet/replknet-31B_32xb64_in1k.py'

model = dict(backbone=dict(drop_path_rate=0.3))
train_cfg = dict(max_epochs=120)
custom_hooks = []  # no EMA (the 300-epoch RepLKNet-31B recipe has one)
