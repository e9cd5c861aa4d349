"""Torch-only building blocks of replk_mm (no OpenMMLab import).

Small single-purpose modules, in the spirit of timm's ``layers``: drop path, conv-BN and BN
folding, the re-parameterizable large depth-wise conv, the re-parameterization protocol with a
generic :func:`switch_to_deploy`, and the RepLKNet blocks and trunk. The OpenMMLab backbones in
``replk_mm.models`` are built from these.
"""
from .conv_bn import (
                      ConvBN,
                      KernelBias,
                      check_foldable_norm,
                      conv_bn,
                      conv_kernel_bias,
                      dw_conv_bn,
                      fuse_conv_bn,
)
from .drop_path import DropPath, drop_path
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
                       linear_drop_path_rates,
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

__all__ = [
    'DropPath', 'drop_path', 'KernelBias', 'check_foldable_norm', 'conv_bn', 'dw_conv_bn',
    'conv_kernel_bias', 'fuse_conv_bn', 'ReparamModule', 'switch_to_deploy', 'is_deployed',
    'reparam_modules', 'ReparamLargeKernelConv', 'build_dw_branch', 'branch_kernel_bias',
    'check_odd_kernel', 'RepLKBlock', 'ConvFFN', 'RepLKNetStage', 'build_stem',
    'build_transition', 'ARCH_SETTINGS', 'parse_arch', 'check_out_indices',
    'linear_drop_path_rates', 'RepLKNetTrunk', 'ConvBN', 'fold_deploy_state_dict'
]
