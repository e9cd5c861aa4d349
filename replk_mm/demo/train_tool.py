"""Run `tools/train.py` in a child process for the demos (its log streams to the console)."""
import os
import os.path as osp
import subprocess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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
