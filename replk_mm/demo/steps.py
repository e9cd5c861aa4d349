"""Steps the segmentation and detection demos share: progress banners, training through
`tools/train.py` in a child process (its log streams to the console), evaluation, and
re-parameterization followed by a second evaluation."""
import os
import os.path as osp
import subprocess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def phase(task, step, total, message):
    print(f'\n===== [{task} demo {step}/{total}] {message} =====', flush=True)


def run_train_tool(command, work_dir, threads=None):
    """Run `command` (a tools/train.py call) and return the last checkpoint it wrote.

    ``threads`` sets OMP_NUM_THREADS/MKL_NUM_THREADS for the child.
    """
    print('$ ' + ' '.join(command), flush=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [REPO] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    result = subprocess.run(command, env=env)
    if result.returncode:
        raise RuntimeError(f'training failed (exit status {result.returncode}); see the log '
                           f'above and {work_dir}')
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise RuntimeError(f'training finished without writing {last}')
    with open(last) as f:
        return f.read().strip()


def evaluate(config, checkpoint, work_dir, cfg_options=None):
    """The metrics of ``checkpoint`` on the config's test split, as `tools/test.py` computes
    them (mmseg/mmdet print their tables on the way)."""
    from replk_mm.apis import test_runner
    return test_runner(config, checkpoint, work_dir=work_dir, cfg_options=cfg_options).test()


def reparameterize_and_evaluate(config, checkpoint, work_dir, cfg_options=None):
    """Merge the small kernels and BNs into the large kernels, write the deploy-form checkpoint
    and config into ``work_dir`` and evaluate them; returns (config, checkpoint, metrics)."""
    from replk_mm.apis.deploy import reparameterize_checkpoint
    deploy_ckpt = osp.join(work_dir, 'deploy.pth')
    deploy_cfg = osp.join(work_dir, 'deploy_config.py')
    reparameterize_checkpoint(config, checkpoint, deploy_ckpt, deploy_cfg)
    metrics = evaluate(deploy_cfg, deploy_ckpt, osp.join(work_dir, 'eval_deploy_form'),
                       cfg_options)
    return deploy_cfg, deploy_ckpt, metrics
