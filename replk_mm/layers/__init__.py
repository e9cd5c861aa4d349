"""Torch-only building blocks of replk_mm (no OpenMMLab import).

Small single-purpose modules, in the spirit of timm's ``layers``: drop path, the channel
LayerNorm of NCHW maps, conv-BN and BN folding, the re-parameterizable large depth-wise conv,
the re-parameterization protocol with a generic :func:`switch_to_deploy`, the RepLKNet blocks
and trunk, and the UniRepLKNet blocks (Dilated Reparam Block, GRN, SE). The OpenMMLab
backbones in ``replk_mm.models`` are built from these.
"""
from .arch import resolve_arch
from .conv_bn import (
                      ConvBN,
                      KernelBias,
                      check_foldable_norm,
                      conv_bn,
                      conv_kernel_bias,
                      dw_conv_bn,
                      fuse_conv_bn,
)
from .drop_path import DropPath, drop_path, linear_drop_path_rates
from .norm import LayerNorm2d
from .reparam import ReparamModule, is_deployed, reparam_modules, switch_to_deploy
from .reparam_large_kernel import (
                      ReparamLargeKernelConv,
                      branch_kernel_bias,
                      build_dw_branch,
                      check_odd_kernel,
)
from .replknet import (
                      ARCH_SETTINGS,
                      RepLKNetTrunk,
                      check_out_indices,
                      parse_arch,
)
from .replknet_blocks import (
                              ConvFFN,
                              RepLKBlock,
                              RepLKNetStage,
                              build_stem,
                              build_transition,
                              fold_deploy_state_dict,
)
from .unireplknet import (
                          BLOCK_KERNEL_SIZES,
                          DILATED_BRANCHES,
                          GRN,
                          DilatedReparamBlock,
                          SEBlock,
                          UniRepLKNetBlock,
)

__all__ = [
    'DropPath', 'drop_path', 'KernelBias', 'check_foldable_norm', 'conv_bn', 'dw_conv_bn',
    'conv_kernel_bias', 'fuse_conv_bn', 'ReparamModule', 'switch_to_deploy', 'is_deployed',
    'reparam_modules', 'ReparamLargeKernelConv', 'build_dw_branch', 'branch_kernel_bias',
    'check_odd_kernel', 'RepLKBlock', 'ConvFFN', 'RepLKNetStage', 'build_stem',
    'build_transition', 'ARCH_SETTINGS', 'parse_arch', 'check_out_indices',
    'linear_drop_path_rates', 'RepLKNetTrunk', 'DILATED_BRANCHES', 'BLOCK_KERNEL_SIZES', 'GRN',
    'SEBlock', 'DilatedReparamBlock', 'UniRepLKNetBlock', 'resolve_arch', 'LayerNorm2d', 'ConvBN',
    'fold_deploy_state_dict'
]
