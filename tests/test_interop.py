"Interop as users reach it: the deepvit_convert command, timm by name in a fresh interpreter, and life without timm."
import json, subprocess, sys

import torch

from conftest import ROOT
from deepvit_nb.models import DeepViT, create_model

DATA = ROOT / 'tests' / 'data'
OFFICIAL = ['--model', 'deepvit_16b']      # patch, heads and Re-attention blocks are read from the checkpoint


def convert(*args, cwd):
    return subprocess.run(['deepvit_convert', *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_convert_the_official_checkpoint_as_a_user_would(tmp_path):
    io = torch.load(DATA / 'official_tiny_io.pt', weights_only=True)
    r = convert(DATA / 'official_tiny.pth', 'tiny_ema', *OFFICIAL, '--ema', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert ('wrote tiny_ema/config.json and model.safetensors: deepvit_16b with img_size=32, patch_size=8, embed_dim=48, '
            'depth=4, num_heads=4, re_attention=2, 5 classes, 32 px') in r.stdout
    config = json.loads((tmp_path / 'tiny_ema' / 'config.json').read_text())
    assert (config['embed_dim'], config['depth'], config['patch_size'], config['re_attention']) == (48, 4, 8, 2)
    with torch.no_grad():
        logits = DeepViT.from_pretrained(tmp_path / 'tiny_ema')(io['x'])
    assert (logits - io['logits_eval_ema']).abs().max() < 1e-5
    r = convert(DATA / 'official_tiny.pth', 'tiny_ema', *OFFICIAL, cwd=tmp_path)       # the folder holds files now
    assert r.returncode == 2 and 'tiny_ema already holds' in r.stderr and '--overwrite' in r.stderr


def test_convert_refuses_bad_input_by_name(tmp_path):
    r = convert(DATA / 'official_tiny.pth', 'out', '--model', 'deepvit_xl', cwd=tmp_path)
    assert r.returncode == 2 and "unknown model 'deepvit_xl'" in r.stderr
    r = convert(DATA / 'official_tiny.pth', 'out', *OFFICIAL, '--set', 'patch_size', cwd=tmp_path)
    assert r.returncode == 2 and "--set 'patch_size': expected KEY=VALUE" in r.stderr
    (tmp_path / 'junk.pth').write_bytes(b'not a checkpoint')
    r = convert(tmp_path / 'junk.pth', 'out', *OFFICIAL, cwd=tmp_path)
    assert r.returncode == 2 and 'junk.pth: not a readable checkpoint' in r.stderr
    assert not (tmp_path / 'out').exists()


def test_a_run_file_converts_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = create_model('deepvit_tiny_28', img_size=32, num_classes=4).eval()       # fine-tuned at 32 px, 4 classes
    torch.save({'state_dict': model.state_dict(), 'epoch': 2}, tmp_path / 'best_model.pth')
    r = convert(tmp_path / 'best_model.pth', 'folder', '--model', 'deepvit_tiny_28', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    again = DeepViT.from_pretrained(tmp_path / 'folder')
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def fresh(code, tmp_path):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path)


def test_timm_knows_our_models_by_name_in_a_fresh_interpreter(tmp_path):
    r = fresh("import deepvit_nb, timm\n"
              "m = timm.create_model('deepvit_s', num_classes=7)\n"
              "cfg = timm.data.resolve_model_data_config(m)\n"
              "print(type(m).__name__, m.head.out_features, cfg['crop_pct'], cfg['mean'])", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['DeepViT', '7', '0.9', '(0.5,', '0.5,', '0.5)']


def test_everything_but_the_timm_registry_works_without_timm(tmp_path):
    r = fresh("import sys; sys.modules['timm'] = None   # as if timm were not installed\n"
              "import deepvit_nb\n"
              "from deepvit_nb.models import create_model\n"
              "from deepvit_nb import interop\n"
              "m = create_model('deepvit_tiny_28')\n"
              "try: interop.register_timm_models()\n"
              "except ImportError as e: print('refused:', e)\n"
              "print(m(interop.example_images(m)).shape)", tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'refused: timm.models is needed here: pip install "deepvit_nb[timm]"' in r.stdout and 'torch.Size([2, 10])' in r.stdout


def test_the_timm_model_contract_for_every_registered_configuration():
    "What timm's model tests ask of a registered model (our own tests of that contract): the config's names, shapes, heads."
    import pytest
    timm = pytest.importorskip('timm')
    from deepvit_nb.interop import register_timm_models
    from deepvit_nb.models import list_models, MODEL_CONFIGS
    register_timm_models()
    for name in list_models():
        if MODEL_CONFIGS[name]['img_size'] > 224 or MODEL_CONFIGS[name].get('depth', 16) > 16: continue   # keep CI short
        model = timm.create_model(name, pretrained=False).eval()
        cfg, sd = model.pretrained_cfg, model.state_dict()
        assert cfg['classifier'] + '.weight' in sd and cfg['first_conv'] + '.weight' in sd, name
        x = torch.randn(1, *cfg['input_size'])
        with torch.no_grad():
            tokens = model.forward_features(x)
            assert tokens.shape[-1] == model.num_features == model.head_hidden_size, name
            assert model.forward_head(tokens, pre_logits=True).shape == (1, model.num_features)
            assert model.get_classifier() is model.head
            model.reset_classifier(0)
            assert model(x).shape == (1, model.num_features), name
            model.reset_classifier(0, '')
            assert model(x).shape == tokens.shape, name
        assert model.no_weight_decay() == {'pos_embed', 'cls_token'}
        groups = timm.models.group_parameters(model, model.group_matcher())      # by depth, for layer-wise lr decay
        first = groups[min(groups)]
        assert 'cls_token' in first and 'pos_embed' in first and len(groups) >= 1 + len(model.blocks), (name, len(groups))
