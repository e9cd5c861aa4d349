"""Shape bias on cue-conflict images (Geirhos et al., ICLR 2019), the 16-class protocol.

A cue-conflict image has the shape of one category and the texture of another (style
transfer). Following the model-vs-human toolbox (https://github.com/bethgelab/model-vs-human:
``helper/human_categories.py``, ``datasets/decision_mappings.py``, ``plotting/analyses.py``):

* the classifier's 1000 ImageNet logits become softmax probabilities, and each of the 16
  categories gets the *mean* probability of its ImageNet classes (:data:`CATEGORY_INDICES`);
  the decision is the category with the highest mean;
* images whose shape and texture are the same category are left out;
* shape bias = shape decisions / (shape decisions + texture decisions), overall and per shape
  category (decisions that are neither do not count).

Stimuli: the ``stimuli/style-transfer-preprocessed-512`` folder of
https://github.com/rgeirhos/texture-vs-shape, or model-vs-human's ``cue-conflict`` dataset:
16 category folders of 224x224 PNGs named ``<shape><n>-<texture><m>.png``, e.g.
``airplane/airplane1-bicycle2.png`` (shape airplane, texture bicycle). The shape category is the
folder; the texture category is the last ``-`` part of the name without digits (a prefix up
to the last ``_`` is ignored, as model-vs-human does).
"""
import json
import os
import os.path as osp
import re
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

# The 16 categories (sorted, as model-vs-human orders them) and their ImageNet-1k class
# indices, from model-vs-human's helper/human_categories.py (HumanCategories.*_indices).
CATEGORY_INDICES = {
    'airplane': [404],
    'bear': [294, 295, 296, 297],
    'bicycle': [444, 671],
    'bird': [8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89,
             90, 91, 92, 93, 94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135,
             136, 137, 138, 139, 140, 141, 142, 143, 144, 145],
    'boat': [472, 554, 625, 814, 914],
    'bottle': [440, 720, 737, 898, 899, 901, 907],
    'car': [436, 511, 817],
    'cat': [281, 282, 283, 284, 285, 286],
    'chair': [423, 559, 765, 857],
    'clock': [409, 530, 892],
    'dog': [152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167,
            168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184,
            185, 186, 187, 188, 189, 190, 191, 193, 194, 195, 196, 197, 198, 199, 200, 201, 202,
            203, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, 217, 218, 219, 220,
            221, 222, 223, 224, 225, 226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238,
            239, 240, 241, 243, 244, 245, 246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257,
            259, 261, 262, 263, 265, 266, 267, 268],
    'elephant': [385, 386],
    'keyboard': [508, 878],
    'knife': [499],
    'oven': [766],
    'truck': [555, 569, 656, 675, 717, 734, 864, 867],
}
CATEGORIES = tuple(sorted(CATEGORY_INDICES))
NUM_IMAGENET_CLASSES = 1000
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg')
# model-vs-human feeds 224x224 stimuli unchanged, normalized with ImageNet's statistics
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def aggregate_16(probabilities):
    """(N, 1000) ImageNet probabilities -> (N, 16) category scores: the mean probability of
    each category's ImageNet classes (model-vs-human's ``np.mean`` aggregation)."""
    probabilities = torch.as_tensor(probabilities)
    if probabilities.dim() != 2 or probabilities.shape[1] != NUM_IMAGENET_CLASSES:
        raise ValueError(f'expected (N, {NUM_IMAGENET_CLASSES}) ImageNet scores, got '
                         f'{tuple(probabilities.shape)}: shape bias needs an ImageNet-1k '
                         'classifier')
    return torch.stack([probabilities[:, CATEGORY_INDICES[c]].mean(dim=1) for c in CATEGORIES],
                       dim=1)


def decide_16(logits):
    """Category decisions (names) for (N, 1000) ImageNet logits."""
    scores = aggregate_16(torch.softmax(torch.as_tensor(logits).double(), dim=1))
    return [CATEGORIES[i] for i in scores.argmax(dim=1).tolist()]


@dataclass
class Stimulus:
    path: str
    shape: str
    texture: str

    @property
    def conflict(self):
        return self.shape != self.texture


def texture_of(filename):
    """The texture category of a stimulus file name ('airplane1-bicycle2.png' -> 'bicycle')."""
    name = osp.splitext(osp.basename(filename))[0].split('_')[-1]
    return re.sub(r'\d', '', name.split('-')[-1])


def find_stimuli(folder):
    """The cue-conflict stimuli of ``folder`` (one sub-folder per shape category), sorted.

    Raises:
        FileNotFoundError: no folder, or no category sub-folder with images.
        ValueError: a sub-folder or a texture that is not one of the 16 categories, or a file
            name without the ``<shape>-<texture>`` form.
    """
    if not osp.isdir(folder):
        raise FileNotFoundError(f'stimulus folder {folder} does not exist')
    folders = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
    unknown = [d for d in folders if d not in CATEGORY_INDICES]
    if unknown:
        raise ValueError(f'{folder}: sub-folders {unknown} are not among the 16 categories '
                         f'{list(CATEGORIES)}; expected <category>/<shape><n>-<texture><m>.png')
    stimuli = []
    for shape in folders:
        for name in sorted(os.listdir(osp.join(folder, shape))):
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            texture = texture_of(name)
            if '-' not in name or texture not in CATEGORY_INDICES:
                raise ValueError(f'{osp.join(folder, shape, name)}: expected a name like '
                                 f'{shape}1-bicycle2.png (<shape><n>-<texture><m>, texture one '
                                 f'of the 16 categories), got texture {texture!r}')
            stimuli.append(Stimulus(osp.join(folder, shape, name), shape, texture))
    if not stimuli:
        raise FileNotFoundError(f'no cue-conflict images in {folder}: expected 16 category '
                                'folders of <shape><n>-<texture><m>.png (docs/analysis.md says '
                                'where to get them)')
    return stimuli


@dataclass
class ShapeBiasResult:
    """Shape bias of one model.

    Attributes:
        shape_bias: shape / (shape + texture) decisions over all cue-conflict images (None if
            neither ever happened).
        per_category: the same per shape category.
        fraction_shape / fraction_texture: shape / texture decisions as a share of all
            stimuli (excluded ones included, as model-vs-human counts them).
        counts: per shape category ``{'images', 'shape', 'texture'}``.
        excluded: images whose shape and texture category are the same.
    """
    model: str
    shape_bias: Optional[float]
    per_category: Dict[str, Optional[float]]
    fraction_shape: float
    fraction_texture: float
    num_images: int
    excluded: int
    counts: Dict[str, Dict[str, int]] = field(default_factory=dict)
    decisions: Dict[str, str] = field(default_factory=dict, repr=False)

    def to_json(self, path):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(asdict(self), f, indent=2)
        return path

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            data = json.load(f)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f'{path} is not a shape-bias result written by this tool: '
                             f'{exc}') from exc


def _ratio(shape, texture):
    return shape / (shape + texture) if shape + texture else None


def shape_bias_from_decisions(stimuli, decisions, model=''):
    """:class:`ShapeBiasResult` from one category decision per stimulus."""
    if len(stimuli) != len(decisions):
        raise ValueError(f'{len(decisions)} decisions for {len(stimuli)} stimuli')
    counts = {c: dict(images=0, shape=0, texture=0) for c in CATEGORIES}
    excluded = 0
    for stimulus, decision in zip(stimuli, decisions):
        if not stimulus.conflict:
            excluded += 1
            continue
        count = counts[stimulus.shape]
        count['images'] += 1
        count['shape'] += decision == stimulus.shape
        count['texture'] += decision == stimulus.texture
    counts = {c: n for c, n in counts.items() if n['images']}
    shape = sum(n['shape'] for n in counts.values())
    texture = sum(n['texture'] for n in counts.values())
    images = sum(n['images'] for n in counts.values())
    if not images:
        raise ValueError('no cue-conflict image (every stimulus has the same shape and '
                         'texture category)')
    return ShapeBiasResult(
        model=model, shape_bias=_ratio(shape, texture),
        per_category={c: _ratio(n['shape'], n['texture']) for c, n in counts.items()},
        fraction_shape=shape / len(stimuli), fraction_texture=texture / len(stimuli),
        num_images=images,
        excluded=excluded, counts=counts,
        decisions={osp.relpath(s.path, osp.dirname(osp.dirname(s.path))): d
                   for s, d in zip(stimuli, decisions)})


def load_stimulus(path, size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, rgb=True):
    """A stimulus as a normalized (3, size, size) tensor. Images of another size are resized
    (short side to ``size * 256 / 224``, bilinear) and centre-cropped, as model-vs-human does."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image = image.convert('RGB')
            if image.size != (size, size):
                short = round(size * 256 / 224)
                w, h = image.size
                scale = short / min(w, h)
                image = image.resize((max(round(w * scale), size), max(round(h * scale), size)),
                                     Image.BILINEAR)
                w, h = image.size
                left, top = (w - size) // 2, (h - size) // 2
                image = image.crop((left, top, left + size, top + size))
            array = np.asarray(image, dtype=np.float32) / 255.0
    except OSError as exc:
        raise ValueError(f'cannot read stimulus {path}: {exc}') from exc
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    tensor = (tensor - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return tensor if rgb else tensor.flip(0)


def evaluate_shape_bias(classify: Callable[[torch.Tensor], torch.Tensor], stimuli_dir,
                        model='', batch_size=16, size=224, mean=IMAGENET_MEAN,
                        std=IMAGENET_STD, rgb=True, progress=print):
    """Shape bias of ``classify`` on the cue-conflict images in ``stimuli_dir``.

    Args:
        classify: (N, 3, size, size) normalized batch -> (N, 1000) ImageNet logits.
        stimuli_dir (str): See the module docstring for the layout.
        model (str): Name stored in the result.
        batch_size (int): Images per call of ``classify``.
        size (int): Input side (224 in the protocol).
        mean, std (tuple): Normalization on [0, 1] RGB values.
        rgb (bool): The classifier takes RGB (else BGR) channels.
        progress (Callable[[str], None]): Receives progress lines.

    Returns:
        ShapeBiasResult
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
    stimuli = find_stimuli(stimuli_dir)
    progress(f'[shape-bias] {model or "model"}: {len(stimuli)} stimuli in {stimuli_dir}')
    decisions = []
    with torch.no_grad():
        for start in range(0, len(stimuli), batch_size):
            batch = stimuli[start:start + batch_size]
            inputs = torch.stack([load_stimulus(s.path, size, mean, std, rgb) for s in batch])
            logits = classify(inputs)
            if not isinstance(logits, torch.Tensor) or logits.shape[0] != len(batch):
                raise ValueError(f'the classifier returned {type(logits).__name__} '
                                 f'{tuple(getattr(logits, "shape", ()))} for a batch of '
                                 f'{len(batch)}; expected (N, 1000) logits')
            decisions += decide_16(logits)
            done = start + len(batch)
            if done == len(stimuli) or (done // batch_size) % 10 == 0:
                progress(f'[shape-bias] {done}/{len(stimuli)} images')
    return shape_bias_from_decisions(stimuli, decisions, model)


def format_result(result):
    """Per-category and overall shape bias as text lines."""
    lines = [f'shape bias of {result.model or "the model"} ({result.num_images} cue-conflict '
             f'images, {result.excluded} without conflict left out)',
             f'{"category":<10} {"images":>6} {"shape":>6} {"texture":>7} {"shape bias":>10}']
    for category in CATEGORIES:
        if category in result.counts:
            n = result.counts[category]
            bias = result.per_category[category]
            lines.append(f'{category:<10} {n["images"]:>6} {n["shape"]:>6} {n["texture"]:>7} '
                         f'{"-" if bias is None else f"{bias:.3f}":>10}')
    overall = '-' if result.shape_bias is None else f'{result.shape_bias:.3f}'
    shape = sum(n['shape'] for n in result.counts.values())
    texture = sum(n['texture'] for n in result.counts.values())
    lines.append(f'{"overall":<10} {result.num_images:>6} {shape:>6} {texture:>7} '
                 f'{overall:>10}')
    return lines


MARKERS = ('o', 's', 'D', '^', 'v', 'P', 'X', '*')


def plot_shape_bias(results: List[ShapeBiasResult], out_file, title=None):
    """The paper's (and model-vs-human's) shape-bias plot: one row per shape category, the
    fraction of 'shape' decisions on the top axis (of 'texture' decisions on the bottom one,
    reversed), one marker per model and category and a vertical line at each model's overall
    shape bias. Returns ``out_file``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not results:
        raise ValueError('plot_shape_bias needs at least one result')
    categories = [c for c in CATEGORIES if any(c in r.per_category for r in results)]
    fig, ax = plt.subplots(figsize=(6.5, 0.38 * len(categories) + 2.2))
    colours = plt.get_cmap('tab10')
    for i, result in enumerate(results):
        colour, marker = colours(i % 10), MARKERS[i % len(MARKERS)]
        xs, ys = [], []
        for row, category in enumerate(categories):
            bias = result.per_category.get(category)
            if bias is not None:
                xs.append(1 - bias)  # the bottom axis counts texture decisions
                ys.append(row)
        label = result.model or f'model {i + 1}'
        if result.shape_bias is not None:
            ax.axvline(1 - result.shape_bias, color=colour, linewidth=1.5)
            label = f'{label} ({result.shape_bias:.2f})'
        ax.scatter(xs, ys, color=colour, marker=marker, s=55, edgecolors='k', linewidths=0.5,
                   zorder=3, label=label, clip_on=False)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, len(categories) - 0.5)
    ax.set_yticks(range(len(categories)))
    ax.set_yticklabels(categories)
    ax.invert_yaxis()
    for row in range(len(categories) - 1):
        ax.axhline(row + 0.5, color='gray', linestyle='dotted', alpha=0.4)
    ax.set_xlabel("Fraction of 'texture' decisions")
    top = ax.secondary_xaxis('top', functions=(lambda x: 1 - x, lambda x: 1 - x))
    top.set_xlabel("Fraction of 'shape' decisions")
    ax.set_ylabel('Shape categories')
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.12 - 0.2 / len(categories)),
              ncol=min(len(results), 3), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file, dpi=150)
    plt.close(fig)
    return out_file


def classifier_from_config(config, checkpoint, progress=print):
    """A ``classify`` function and its input convention from an mmpretrain classifier config
    and a whole-model checkpoint (re-parameterized when it can be: same outputs, faster).

    Returns:
        tuple: (classify, dict(mean=..., std=..., rgb=...)) with mean / std on [0, 1] values.
    """
    from ..apis.builder import build_model, reparameterize
    from ..deploy.models import load_checkpoint_strict, load_deploy_config, preprocess_of
    cfg = load_deploy_config(config)
    if cfg.default_scope != 'mmpretrain':
        raise ValueError(f'{config}: shape bias needs an mmpretrain ImageNet classifier config, '
                         f'got default_scope {cfg.default_scope!r}')
    progress(f'[shape-bias] building {config}')
    model = build_model(cfg)
    load_checkpoint_strict(model, checkpoint)
    merged = reparameterize(model)
    if merged:
        progress(f'[shape-bias] re-parameterized {merged} modules')
    pre = preprocess_of(cfg)

    def classify(inputs):
        return model(inputs, mode='tensor')

    return classify, dict(mean=tuple(m / 255 for m in pre.mean),
                          std=tuple(s / 255 for s in pre.std), rgb=pre.rgb)


__all__ = ['CATEGORY_INDICES', 'CATEGORIES', 'aggregate_16', 'decide_16', 'Stimulus',
           'texture_of', 'find_stimuli', 'ShapeBiasResult', 'shape_bias_from_decisions',
           'load_stimulus', 'evaluate_shape_bias', 'format_result', 'plot_shape_bias',
           'classifier_from_config']
