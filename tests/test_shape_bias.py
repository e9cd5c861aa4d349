"""Shape bias on cue-conflict images (replk_mm.analysis.shape_bias,
tools/analysis/shape_bias.py) with classifiers whose answers are known."""
import json

import numpy as np
import pytest
import torch
from conftest import tiny_classifier_config
from PIL import Image

from replk_mm.analysis.shape_bias import (
    CATEGORIES,
    CATEGORY_INDICES,
    decide_16,
    evaluate_shape_bias,
    find_stimuli,
    load_stimulus,
    texture_of,
)

# stimulus -> the ImageNet class the stub classifier answers (index into 1000 logits)
ANSWERS = {
    'airplane/airplane1-bear2.png': 404,   # airplane: shape decision
    'airplane/airplane2-cat1.png': 281,    # tabby cat: texture decision
    'airplane/airplane3-airplane1.png': 294,  # no cue conflict: left out
    'bear/bear1-airplane1.png': 296,       # bear: shape
    'bear/bear2-dog1.png': 766,            # oven: neither
    'cat/cat1-dog2.png': 152,              # a dog: texture
}


def grey(index):
    return 20 * index + 10


@pytest.fixture
def stimuli(tmp_path):
    root = tmp_path / 'cue-conflict'
    for i, name in enumerate(ANSWERS):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new('RGB', (224, 224), (grey(i), grey(i), grey(i))).save(root / name)
    return root


def stub_classifier(inputs):
    """Answers from the image: the grey level says which stimulus it is."""
    level = (inputs[:, 0].mean(dim=(1, 2)) * 0.229 + 0.485) * 255
    logits = torch.zeros(len(inputs), 1000)
    answers = list(ANSWERS.values())
    for row, value in enumerate(level.tolist()):
        logits[row, answers[round((value - 10) / 20)]] = 10.0
    return logits


def test_decisions_average_probabilities_per_category():
    logits = torch.zeros(2, 1000)
    logits[0, 404] = 10  # airplane
    # knife (1 class) at 5 vs every dog class (117) at 3: summed, dog would win
    # (117 e^3 > e^5); model-vs-human averages, so knife wins (e^5 > e^3)
    logits[1, CATEGORY_INDICES['knife']] = 5
    logits[1, CATEGORY_INDICES['dog']] = 3
    assert decide_16(logits) == ['airplane', 'knife']
    assert len(CATEGORIES) == 16 and CATEGORIES == tuple(sorted(CATEGORIES))
    # model-vs-human's lists hold 207 ImageNet classes, no class in two categories
    indices = [i for values in CATEGORY_INDICES.values() for i in values]
    assert len(indices) == len(set(indices)) == 207
    with pytest.raises(ValueError, match='ImageNet-1k'):
        decide_16(torch.zeros(1, 10))


def test_shape_bias_of_known_answers(stimuli):
    result = evaluate_shape_bias(stub_classifier, str(stimuli), model='stub', batch_size=4,
                                 progress=lambda m: None)
    # airplane: 1 shape, 1 texture; bear: 1 shape (the oven counts for neither); cat: 1
    # texture; airplane3-airplane1 has no conflict
    assert result.counts == {'airplane': dict(images=2, shape=1, texture=1),
                             'bear': dict(images=2, shape=1, texture=0),
                             'cat': dict(images=1, shape=0, texture=1)}
    assert result.per_category == {'airplane': 0.5, 'bear': 1.0, 'cat': 0.0}
    assert result.shape_bias == 0.5 and result.excluded == 1 and result.num_images == 5
    assert result.fraction_shape == pytest.approx(2 / 6)  # of all stimuli, as model-vs-human
    assert result.decisions['bear/bear2-dog1.png'] == 'oven'


def test_stimulus_names_and_layout(tmp_path, stimuli):
    assert texture_of('airplane1-bicycle2.png') == 'bicycle'
    assert texture_of('XXX_dog10-bird2.png') == 'bird'
    found = find_stimuli(str(stimuli))
    assert [(s.shape, s.texture) for s in found][:2] == [('airplane', 'bear'),
                                                         ('airplane', 'cat')]
    (stimuli / 'spaceship').mkdir()
    with pytest.raises(ValueError, match='spaceship'):
        find_stimuli(str(stimuli))
    (stimuli / 'spaceship').rmdir()
    Image.new('RGB', (8, 8)).save(stimuli / 'cat' / 'cat2.png')
    with pytest.raises(ValueError, match='cat1-bicycle2.png'):
        find_stimuli(str(stimuli))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        find_stimuli(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='no cue-conflict images'):
        find_stimuli(str(tmp_path / 'empty'))


def test_stimuli_of_another_size_are_resized_and_cropped(tmp_path):
    path = tmp_path / 'wide.png'
    array = np.zeros((100, 300, 3), np.uint8)
    array[:, 150:] = (255, 0, 0)  # left half black, right half red
    Image.fromarray(array).save(path)
    tensor = load_stimulus(str(path), size=32)
    assert tensor.shape == (3, 32, 32)
    # short side to 32 * 256 / 224 = 37 -> 111 x 37, centre crop 32: the split stays central
    red = (1 - 0.485) / 0.229
    assert tensor[0, 16, -1] == pytest.approx(red) and tensor[0, 16, 0] < 0
    bgr = load_stimulus(str(path), size=32, rgb=False)
    torch.testing.assert_close(bgr, tensor.flip(0))


def test_tool_prints_writes_and_plots(stimuli, tmp_path, monkeypatch, capsys):
    import replk_mm.analysis.shape_bias as shape_bias
    from tools.analysis.shape_bias import main
    convention = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), rgb=True)
    monkeypatch.setattr(shape_bias, 'classifier_from_config',
                        lambda config, checkpoint: (stub_classifier, convention))
    first = tmp_path / 'a.json'
    main(['cls.py', 'cls.pth', '--stimuli', str(stimuli), '--label', 'stub A', '--json',
          str(first)])
    printed = capsys.readouterr().out
    assert 'airplane        2      1       1      0.500' in printed
    assert 'overall         5      2       2      0.500' in printed
    assert json.loads(first.read_text())['shape_bias'] == 0.5
    plot = tmp_path / 'bias.png'
    results = main(['cls.py', 'cls.pth', '--stimuli', str(stimuli), '--label', 'stub B',
                    '--compare', str(first), '--plot', str(plot)])
    assert [r.model for r in results] == ['stub B', 'stub A']
    assert plot.stat().st_size > 5000
    plot.unlink()
    main(['--compare', str(first), '--plot', str(plot)])  # plot earlier results only
    assert plot.exists()
    with pytest.raises(SystemExit, match='--stimuli'):
        main(['cls.py', 'cls.pth'])
    with pytest.raises(SystemExit, match='both CONFIG and CHECKPOINT'):
        main(['cls.py', '--stimuli', str(stimuli)])
    with pytest.raises(SystemExit, match='no such file'):
        main(['--compare', str(tmp_path / 'missing.json'), '--plot', str(plot)])


def test_real_classifier_from_config(stimuli, tmp_path):
    from replk_mm.analysis.shape_bias import classifier_from_config
    from replk_mm.apis.builder import build_model
    from replk_mm.deploy.models import load_deploy_config
    paths = {}
    for classes in (1000, 10):
        config = tmp_path / f'cls{classes}.py'
        config.write_text(tiny_classifier_config(num_classes=classes))
        checkpoint = tmp_path / f'cls{classes}.pth'
        torch.save({'state_dict': build_model(load_deploy_config(str(config))).state_dict()},
                   checkpoint)
        paths[classes] = str(config), str(checkpoint)
    classify, convention = classifier_from_config(*paths[1000], progress=lambda m: None)
    assert convention['rgb'] and convention['mean'] == pytest.approx((0.485, 0.456, 0.406))
    result = evaluate_shape_bias(classify, str(stimuli), progress=lambda m: None,
                                 **convention)
    assert len(result.decisions) == 6 and result.num_images == 5
    classify, convention = classifier_from_config(*paths[10], progress=lambda m: None)
    with pytest.raises(ValueError, match='ImageNet-1k'):
        evaluate_shape_bias(classify, str(stimuli), progress=lambda m: None, **convention)
    with pytest.raises(ValueError, match='does not fit'):
        classifier_from_config(paths[1000][0], paths[10][1], progress=lambda m: None)
