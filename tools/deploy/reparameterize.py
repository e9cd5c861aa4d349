"""Merge the small kernels and BNs of a trained RepLKNet model into single large convs."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='training config of the checkpoint')
    parser.add_argument('checkpoint', help='trained checkpoint')
    parser.add_argument('out', help='where to save the deploy-form checkpoint')
    parser.add_argument('--deploy-config', help='also write the deploy-form config here')
    args = parser.parse_args(argv)
    from replk_mm.apis.deploy import reparameterize_checkpoint
    return reparameterize_checkpoint(args.config, args.checkpoint, args.out, args.deploy_config)


if __name__ == '__main__':
    main()
