"Re-attention retrofitted into a trained ViT and fine-tuned with deepvit_train, as a user would (issue 23, item 4)."
import json

import torch

from conftest import run_cli


def args(data, out, name, *more):
    return [f'data_dir={data}', 'dataset=imagefolder', 'model=vit_tiny_32', 'img_size=28', 'epochs=1', 'batch_size=8',
            'eval_batch_size=8', 'bn_recalibration_batches=0', f'output_dir={out}', f'name={name}', *more]


def test_fine_tune_a_vit_with_retrofitted_blocks(image_folder, tmp_path):
    r = run_cli(args(image_folder, tmp_path, 'vit'), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    vit = tmp_path / 'vit' / 'final_model.pth'
    # retrofitted but not trained, it evaluates exactly as the ViT does
    ev = {}
    for name, more in (('plain', []), ('retro', ['retrofit_blocks=1,-1'])):
        r = run_cli(args(image_folder, tmp_path, f'eval_{name}', 'eval_only=true', f'pretrained={vit}', *more), cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
        ev[name] = json.loads((tmp_path / f'eval_{name}' / 'eval.json').read_text())
    assert ev['plain']['top1'] == ev['retro']['top1'] and abs(ev['plain']['loss'] - ev['retro']['loss']) < 1e-5
    # fine-tuned: Θ learns a mix, the run's files hold it, and its own weights evaluate with the same setting
    r = run_cli(args(image_folder, tmp_path, 'ft', f'pretrained={vit}', 'retrofit_blocks=1,-1'), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    ft = tmp_path / 'ft' / 'final_model.pth'
    sd = torch.load(ft, weights_only=True)['state_dict']
    theta = sd['blocks.1.attn.reatten_matrix.weight'].flatten(1)
    assert 'blocks.0.attn.reatten_matrix.weight' not in sd and 'blocks.5.attn.reatten_matrix.weight' in sd
    assert 1e-6 < (theta - torch.eye(4)).abs().max() < 0.5, theta
    r = run_cli(args(image_folder, tmp_path, 'eval_ft', 'eval_only=true', f'pretrained={ft}', 'retrofit_blocks=1,-1'), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_cli(args(image_folder, tmp_path, 'bad', 'retrofit_blocks=one'), cwd=tmp_path)
    assert r.returncode == 2 and "retrofit_blocks 'one': expected block indices" in r.stderr
