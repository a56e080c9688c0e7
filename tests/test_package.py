"The installed package, as a user imports it from outside the notebooks."
import subprocess, sys

import torch
from deepvit_nb.models import DeepViT, create_model, list_models


def test_import_and_create_from_a_fresh_interpreter():
    code = "from deepvit_nb.models import DeepViT, create_model; m = create_model('deepvit_s'); print(type(m).__name__)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'DeepViT'


def test_deepvit_s_forward_at_224():
    torch.manual_seed(0)
    model = create_model('deepvit_s').eval()
    with torch.no_grad():
        logits, maps = model(torch.randn(1, 3, 224, 224), return_attention=True)
    assert logits.shape == (1, 1000)
    assert len(maps) == 16 and maps[0].shape == (1, 12, 197, 197)
    assert [type(b.attn).__name__ for b in model.blocks].count('ReAttention') == 5


def test_every_named_config_builds():
    with torch.device('meta'):
        for name in list_models():
            assert isinstance(create_model(name), DeepViT), name
