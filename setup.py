from setuptools import find_packages, setup

version = {}
with open('replk_mm/version.py') as f:
    exec(f.read(), version)

setup(
    name='replk_mm',
    version=version['__version__'],
    description='RepLKNet (CVPR 2022, 31x31 kernels) for OpenMMLab 2.x: backbone, '
                'configs, re-parameterization and fast large-kernel depth-wise convs',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['replk_mm', 'replk_mm.*']),
    python_requires='>=3.8',
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.7,<0.11',
        # mmseg 1.2.2 and mmdet 3.3.0 assert mmcv<2.2.0; mmcv must be built with its ops
        # (tools/setup_env.sh does that).
        'mmcv>=2.0.0,<2.2.0',
        'numpy',
        'matplotlib',
    ],
    extras_require={
        # ftfy and regex: mmseg 1.2.2 imports them without declaring them.
        'seg': ['mmsegmentation==1.2.2', 'ftfy', 'regex'],
        'det': ['mmdet==3.3.0', 'pycocotools'],
        'pretrain': ['mmpretrain==1.2.0'],
        'all': ['mmsegmentation==1.2.2', 'ftfy', 'regex', 'mmdet==3.3.0', 'pycocotools',
                'mmpretrain==1.2.0'],
        'tests': ['pytest', 'pytest-timeout'],
    },
    license='MIT',
)
