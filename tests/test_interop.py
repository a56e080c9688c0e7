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


def test_timm_factory_arguments_build_where_and_as_asked(tmp_path):
    "create_model(device=, dtype=) builds there (meta: no memory), reset_classifier keeps the model's device, dtype and mode."
    import pytest
    timm = pytest.importorskip('timm')
    from deepvit_nb.interop import register_timm_models
    from deepvit_nb.models import list_models
    register_timm_models()
    for name in list_models():
        with pytest.raises(TypeError):
            timm.create_model(name, device='meta', not_a_model_arg=1)
        model = timm.create_model(name, device='meta', dtype=torch.bfloat16)
        tensors = dict(model.named_parameters()) | dict(model.named_buffers())
        assert {t.device.type for t in tensors.values()} == {'meta'}, name
        assert {t.dtype for n, t in tensors.items() if t.is_floating_point()} == {torch.bfloat16}, name
        model.to(dtype=torch.float64).eval()
        model.reset_classifier(0); model.reset_classifier(3)
        head = model.get_classifier()
        assert (head.weight.device.type, head.weight.dtype, head.training) == ('meta', torch.float64, False), name
        model.requires_grad_(False); model.reset_classifier(0)
        assert not any(p.requires_grad for p in model.parameters()), name
    small = timm.create_model('deepvit_tiny_28', dtype=torch.float64)
    small.save_pretrained(tmp_path / 'm')
    config = json.loads((tmp_path / 'm' / 'config.json').read_text())
    assert 'device' not in config and 'dtype' not in config          # where weights lived is not configuration
    assert DeepViT.from_pretrained(tmp_path / 'm').pos_embed.dtype == torch.float32


def test_a_model_cast_to_bf16_computes_in_bf16():
    "model.to(torch.bfloat16) without autocast: bf16 outputs and gradients, close to the float32 model, on every block kind."
    model = create_model('deepvit_s', img_size=64, depth=4, re_attention=2, num_classes=5)
    x = torch.randn(2, 3, 64, 64)
    for train in (False, True):
        torch.manual_seed(0)
        ref = create_model('deepvit_s', img_size=64, depth=4, re_attention=2, num_classes=5)
        ref.load_state_dict(model.state_dict()); ref.train(train)
        low = create_model('deepvit_s', img_size=64, depth=4, re_attention=2, num_classes=5)
        low.load_state_dict(model.state_dict()); low.train(train).to(torch.bfloat16)
        want = ref(x)
        got = low(x.to(torch.bfloat16))
        assert got.dtype == torch.bfloat16
        assert (got.float() - want).abs().max() <= 0.05 * want.abs().max() + 1e-3, (train, (got.float() - want).abs().max())
        if train:
            got.float().pow(2).sum().backward()
            assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in low.parameters())


def test_fx_tracing_with_timm_registrations_and_no_torchscript():
    "timm's FX route (torchvision's feature extractor with timm's not-traced lists): exact forward, every gradient; TorchScript refused by name."
    import warnings
    import pytest
    timm = pytest.importorskip('timm')
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    from timm.models import get_notrace_functions, get_notrace_modules
    from deepvit_nb.interop import register_timm_models
    register_timm_models()
    kw = dict(leaf_modules=get_notrace_modules(), autowrap_functions=get_notrace_functions(), param_shapes_constant=True)
    model = timm.create_model('deepvit_s', img_size=64, depth=4, re_attention=2, num_classes=42).eval()   # MHSA and Re-attention blocks
    x = torch.randn(2, 3, 64, 64)
    train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=kw)
    traced = create_feature_extractor(model, return_nodes=[eval_nodes[-1]], tracer_kwargs=kw)
    with torch.no_grad():
        assert torch.equal(next(iter(traced(x).values())), model(x))
    model.train()
    traced = create_feature_extractor(model, return_nodes=[train_nodes[-1]], tracer_kwargs=kw)
    next(iter(traced(x).values())).mean().backward()
    assert all(p.grad is not None for p in traced.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(TypeError, match='not compiled by torch.jit.script.*torch.export'):
            torch.jit.script(model)
