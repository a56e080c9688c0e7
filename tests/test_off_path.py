"One step off the path (issue 22): each case a user hit, as the user hit it."
import json, subprocess, sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_cli
from deepvit_nb.models import DeepViT, create_model, read_state_dict, checkpoint_overrides
from deepvit_nb.train import load_config
from deepvit_nb.interop import timm_pretrained_cfg, export_program

DATA = ROOT / 'tests' / 'data'


def convert(*args, cwd):
    return subprocess.run(['deepvit_convert', *map(str, args)], cwd=cwd, capture_output=True, text=True)


# 1. an explicit data_dir is used or refused, never replaced by another copy
@pytest.mark.parametrize('damage', ['missing', 'empty', 'truncated'])
def test_a_damaged_data_dir_is_refused_by_name(tmp_path, damage):
    data = tmp_path / 'fm'
    if damage != 'missing': data.mkdir()
    if damage == 'truncated':
        for stem in ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'):
            (data / stem).write_bytes(b'\0\0\x08\x03' + bytes(100))
    r = run_cli([f'data_dir={data}', 'epochs=1', f'output_dir={tmp_path}/runs'], cwd=tmp_path, timeout=300)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    why = {'missing': f'data_dir {data}: folder not found', 'empty': f'data_dir {data}: no train-images-idx3-ubyte',
           'truncated': f'data_dir {data}: {data}/train-images-idx3-ubyte: checksum mismatch'}[damage]
    assert why in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / 'runs' / 'fashion_mnist' / 'summary.json').exists()


# 12. the 384 px recipe evaluates as the official pipeline does (crop 1.0), like timm's pretrained_cfg
@pytest.mark.parametrize('recipe', sorted((ROOT / 'configs' / 'imagenet').glob('*.yaml')), ids=lambda p: p.stem)
def test_recipes_evaluate_with_the_official_crop(recipe):
    cfg = load_config(recipe)
    assert cfg.crop_pct == timm_pretrained_cfg(cfg.model)['crop_pct'], (recipe.name, cfg.crop_pct)


# 9. config.json: a misspelled key or a malformed file is refused by name
def test_config_json_keys_are_checked(tmp_path):
    folder = tmp_path / 'm'
    create_model('deepvit_tiny_28').save_pretrained(folder)
    config = json.loads((folder / 'config.json').read_text())
    config['scale_adjustmnt'] = 0.5
    (folder / 'config.json').write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json: unknown key\\(s\\) 'scale_adjustmnt'"):
        DeepViT.from_pretrained(folder)
    (folder / 'config.json').write_text('{"depth": 6,')
    with pytest.raises(ValueError, match='config.json: not valid JSON'):
        DeepViT.from_pretrained(folder)


# 11. exporting leaves a training model in training mode
def test_exporters_restore_the_mode():
    m = create_model('deepvit_tiny_28', depth=1).train()
    export_program(m)
    assert m.training and all(x.training for x in m.modules())


# 13. the converter's messages and what it reads from a checkpoint
def test_converter_reads_the_checkpoint_and_names_what_it_built(tmp_path):
    torch.save({'state_dict': create_model('deepvit_tiny_28').state_dict()}, tmp_path / 't28.pth')
    r = convert(tmp_path / 't28.pth', 'out', '--model', 'deepvit_tiny_32', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'deepvit_tiny_32 with img_size=28, in_chans=1, embed_dim=64 (that is deepvit_tiny_28)' in r.stdout
    # heads and Re-attention blocks come from Θ's keys: the official fixture needs no --set
    sd, _ = read_state_dict(DATA / 'official_tiny.pth')
    assert checkpoint_overrides(sd, 'deepvit_16b') == dict(num_classes=5, embed_dim=48, depth=4, patch_size=8, img_size=32,
                                                           num_heads=4, re_attention=2)
    # an EMA safetensors file named as such is read as it is, not as x_ema_ema
    folder = tmp_path / 'hub'
    create_model('deepvit_tiny_28').save_pretrained(folder)
    (folder / 'model.safetensors').rename(tmp_path / 'best_model_ema.safetensors')
    r = convert(tmp_path / 'best_model_ema.safetensors', 'from_ema', '--model', 'deepvit_tiny_28', '--ema', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # a Hub-style folder given where a checkpoint is expected: its weights are read
    create_model('deepvit_tiny_28').save_pretrained(tmp_path / 'hub2')
    m = create_model('deepvit_tiny_28', pretrained=str(tmp_path / 'hub2'))
    assert torch.equal(m.head.weight, DeepViT.from_pretrained(tmp_path / 'hub2').head.weight)
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='is a folder without model.safetensors'):
        read_state_dict(tmp_path / 'empty')
