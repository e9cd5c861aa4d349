"""Convert an mmpretrain RepLKNet classifier checkpoint to the official RepLKNet layout."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('src', help='mmpretrain checkpoint')
    parser.add_argument('dst', help='output: official-layout state dict')
    args = parser.parse_args(argv)
    import torch

    from replk_mm.models.backbones.replknet import (
        convert_mmpretrain_to_official,
        is_mmpretrain_classifier,
    )
    from replk_mm.models.checkpoint import read_checkpoint, unwrap_state_dict
    state = unwrap_state_dict(read_checkpoint(args.src, map_location='cpu'))
    if not is_mmpretrain_classifier(state):
        raise SystemExit(f'{args.src} is not an mmpretrain RepLKNet classifier checkpoint '
                         "(no 'head.fc.weight' and 'backbone.stem.*' keys)")
    converted = convert_mmpretrain_to_official(state)
    torch.save(converted, args.dst)
    print(f'wrote {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('mmpretrain2official.py'):  # expected errors: one line, no traceback
        main()
