"deepvit_collapse end to end, as a user runs it."
import json, subprocess, sys

import torch

from deepvit_nb.models import create_model


def run(args, cwd):
    return subprocess.run([sys.executable, '-m', 'deepvit_nb.collapse', *args], cwd=cwd, capture_output=True, text=True)


def test_help_lists_the_options(tmp_path):
    r = subprocess.run(['deepvit_collapse', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and '--checkpoint' in r.stdout and '--images' in r.stdout


def test_measures_a_checkpoint_beside_its_init(image_folder, tmp_path):
    torch.manual_seed(3)
    torch.save({'state_dict': create_model('deepvit_tiny_32', num_classes=3).state_dict()}, tmp_path / 'm.pth')
    r = run(['--model', 'deepvit_tiny_32', '--checkpoint', str(tmp_path / 'm.pth'), '--data', str(image_folder),
             '--images', '12', '--batch-size', '5', '--out', str(tmp_path / 'out')], tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / 'out' / 'collapse.json').read_text())
    for kind in ('trained', 'init'):
        assert report[kind]['images'] == 12 and len(report[kind]['similar_ratio']) == 5
        assert len(report[kind]['similarity_matrix']) == 6
    assert report['trained']['similarity_matrix'] != report['init']['similarity_matrix']
    assert (tmp_path / 'out' / 'collapse.png').stat().st_size > 1000
    assert (tmp_path / 'out' / 'similarity_matrix.png').stat().st_size > 1000


def test_clear_errors(image_folder, tmp_path):
    r = run(['--model', 'deepvit_xxl', '--data', str(image_folder)], tmp_path)
    assert r.returncode == 2 and 'unknown model' in r.stderr
    torch.save(create_model('deepvit_tiny_32').state_dict(), tmp_path / 'deep.pth')
    r = run(['--model', 'vit_tiny_32', '--checkpoint', str(tmp_path / 'deep.pth'), '--data', str(image_folder)], tmp_path)
    assert r.returncode == 2 and 'unexpected keys' in r.stderr and 'reatten_matrix' in r.stderr
    r = run(['--model', 'vit_tiny_32', '--data', str(tmp_path / 'nowhere')], tmp_path)
    assert r.returncode == 2 and 'data folder not found' in r.stderr


def test_without_checkpoint_the_random_model_is_seeded_and_named(image_folder, tmp_path):
    args = ['--model', 'vit_tiny_32', '--data', str(image_folder), '--images', '9', '--batch-size', '4']
    outs = [run(args + ['--out', str(tmp_path / f'out{i}')], tmp_path) for i in range(2)]
    for r in outs:
        assert r.returncode == 0, r.stderr
        assert 'no --checkpoint: the first row measures random weights (seed 1)' in r.stdout
        assert '  random: similar blocks' in r.stdout and 'trained:' not in r.stdout
    reports = [json.loads((tmp_path / f'out{i}' / 'collapse.json').read_text()) for i in range(2)]
    assert reports[0]['trained'] == reports[1]['trained']          # the same numbers each time
    assert reports[0]['trained'] != reports[0]['init']


def test_bad_counts_are_named(image_folder, tmp_path):
    for flag in ('--images', '--batch-size'):
        r = run(['--model', 'vit_tiny_32', '--data', str(image_folder), flag, '0'], tmp_path)
        assert r.returncode == 2 and f'{flag} must be at least 1, got 0' in r.stderr, r.stderr


def test_a_model_fine_tuned_at_another_size(image_folder, tmp_path):
    "A deepvit_tiny_32 fine-tuned at 48 px (position embedding of a 12x12 grid) is measured at 48 px."
    torch.manual_seed(4)
    torch.save(create_model('deepvit_tiny_32', img_size=48, num_classes=3).state_dict(), tmp_path / 'at48.pth')
    r = run(['--model', 'deepvit_tiny_32', '--checkpoint', str(tmp_path / 'at48.pth'), '--data', str(image_folder),
             '--images', '6', '--out', str(tmp_path / 'out')], tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / 'out' / 'collapse.json').read_text())
    assert report['img_size'] == 48 and report['trained']['images'] == 6
    assert report['trained']['similarity_matrix'] != report['init']['similarity_matrix']


def test_a_hugging_face_folder_is_measured(image_folder, tmp_path):
    "A Hugging Face ViT written by its save_pretrained (random weights from a small config), measured by folder name."
    import transformers
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=28, patch_size=7, num_channels=3, hidden_size=32, num_hidden_layers=3,
                                 num_attention_heads=4, intermediate_size=64, num_labels=3)
    transformers.ViTForImageClassification(cfg).save_pretrained(tmp_path / 'hf_vit')
    r = run(['--model', str(tmp_path / 'hf_vit'), '--data', str(image_folder), '--images', '8', '--batch-size', '4',
             '--out', str(tmp_path / 'out')], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((tmp_path / 'out' / 'collapse.json').read_text())
    assert report['img_size'] == 28 and len(report['trained']['attention_entropy']) == 3
    assert len(report['trained']['cka']) == 3 and (tmp_path / 'out' / 'report.html').is_file()
    # without transformers installed: a clear message, not a traceback
    code = ("import sys; sys.modules['transformers'] = None\n"
            f"from deepvit_nb.collapse import main; sys.exit(main(['--model', {str(tmp_path / 'hf_vit')!r}, '--images', '4']))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "needs transformers (pip install 'deepvit_nb[hf]')" in r.stderr, r.stderr[-2000:]
