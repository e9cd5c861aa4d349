"""Merge the small kernels and BNs of a trained RepLKNet model into single large convs."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='training config of the checkpoint')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out', help='where to save the deploy-form checkpoint')
    parser.add_argument('--deploy-config', help='also write the deploy-form config here')
    parser.add_argument('--allow-partial', action='store_true',
                        help='convert even if the checkpoint does not fit the model (what fits '
                             'is loaded, the rest is listed); by default that is an error')
    args = parser.parse_args(argv)
    from replk_mm.apis.deploy import reparameterize_checkpoint
    return reparameterize_checkpoint(args.config, args.checkpoint, args.out, args.deploy_config,
                                     allow_partial=args.allow_partial)


if __name__ == '__main__':
    from replk_mm.errors import report_user_errors
    with report_user_errors('reparameterize.py'):  # expected errors: one line, no traceback
        main()
