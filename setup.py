from setuptools import find_packages, setup

version = {}
with open('replk_mm/version.py') as f:
    exec(f.read(), version)

MM = ['mmengine>=0.10.7,<0.11', 'mmcv>=2.0.0,<2.2.0', 'matplotlib']
SEG = ['mmsegmentation==1.2.2', 'ftfy', 'regex']
DET = ['mmdet==3.3.0', 'pycocotools']
PRETRAIN = ['mmpretrain==1.2.0']

setup(
    name='replk_mm',
    version=version['__version__'],
    description='RepLKNet (CVPR 2022, 31x31 kernels) for OpenMMLab 2.x: backbone, '
                'configs, re-parameterization and fast large-kernel depth-wise convs',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['replk_mm', 'replk_mm.*']),
    python_requires='>=3.8',
    # replk_mm.ops (the fast depth-wise conv) needs torch alone; the OpenMMLab plugin needs the
    # 'mm' extra and the downstream packages of the tasks you use.
    install_requires=['torch>=2.0', 'numpy'],
    extras_require={
        # mmseg 1.2.2 and mmdet 3.3.0 assert mmcv<2.2.0; mmcv must be built with its ops
        # (tools/setup_env.sh does that).
        'mm': MM,
        # ftfy and regex: mmseg 1.2.2 imports them without declaring them.
        'seg': MM + SEG,
        'det': MM + DET,
        'pretrain': MM + PRETRAIN,
        'all': MM + SEG + DET + PRETRAIN,
        'onnx': ['onnx', 'onnxruntime', 'onnxscript'],
        'tests': ['pytest', 'pytest-timeout', 'pytest-xdist'],
        'lint': ['ruff==0.17.6'],
    },
    license='MIT',
)
