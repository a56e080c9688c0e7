"deepvit_train end to end: exact resume, signals, two processes, bad input."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest
import yaml
import torch

from conftest import ROOT, run_cli
from deepvit_nb.train import load_config, TrainConfig

# A small run that touches every source of randomness: augmentation (RandAugment, erasing), MixUp/CutMix,
# drop path, EMA; 66 images in batches of 8 give 8 steps per epoch, 2 epochs.
def base_args(data, out, name):
    return [f'data_dir={data}', 'dataset=imagefolder', 'model=deepvit_tiny_32', 'img_size=28', 'epochs=2',
            'batch_size=8', 'eval_batch_size=8', 'checkpoint_every=3', 'keep_last=3', 'drop_path=0.1',
            'mixup=0.8', 'cutmix=1.0', 'ema_decay=0.9', 'warmup_epochs=0.5', 'bn_recalibration_batches=2',
            f'output_dir={out}', f'name={name}']


def final_weights(run_dir):
    return torch.load(Path(run_dir) / 'final_model.pth', weights_only=True)


def assert_same_weights(a, b):
    for key in ('state_dict', 'state_dict_ema'):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), f'{key}.{k} differs'


@pytest.fixture(scope='module')
def uninterrupted(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')
    r = run_cli(base_args(image_folder, out, 'straight'), cwd=out)
    assert r.returncode == 0, r.stderr
    return out / 'straight'


@pytest.mark.parametrize('crash_at', [2, 7, 8, 13])   # before any checkpoint, mid-epoch, at an epoch's last step, late
def test_resume_after_a_crash_gives_identical_weights(image_folder, uninterrupted, tmp_path, crash_at):
    args = base_args(image_folder, tmp_path, 'crashy')
    r = run_cli(args, cwd=tmp_path, crash_at=crash_at)
    assert r.returncode != 0 and f'DEEPVIT_CRASH_AT_STEP={crash_at}: simulated crash' in r.stderr
    assert not (tmp_path / 'crashy' / 'final_model.pth').exists()
    r = run_cli(args + ['--resume', 'auto'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    if crash_at >= 3: assert 'resumed from' in r.stdout + r.stderr
    assert_same_weights(final_weights(tmp_path / 'crashy'), final_weights(uninterrupted))


def test_the_equality_check_can_fail(image_folder, uninterrupted, tmp_path):
    # another seed gives other weights, so identical weights above are not an accident of the check
    r = run_cli(base_args(image_folder, tmp_path, 'other') + ['seed=7'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with pytest.raises(AssertionError):
        assert_same_weights(final_weights(tmp_path / 'other'), final_weights(uninterrupted))


def test_half_written_checkpoints_are_ignored(image_folder, uninterrupted, tmp_path):
    args = base_args(image_folder, tmp_path, 'partial')
    assert run_cli(args, cwd=tmp_path, crash_at=7).returncode != 0
    ckpts = tmp_path / 'partial' / 'checkpoints'
    # a crash while writing step 9 would leave this behind; --resume auto must not use it
    junk = ckpts / '.tmp_step_00000009'
    junk.mkdir(); (junk / 'model.safetensors').write_bytes(b'truncated')
    r = run_cli(args + ['--resume', 'auto'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'step_00000006' in r.stdout + r.stderr
    assert_same_weights(final_weights(tmp_path / 'partial'), final_weights(uninterrupted))


def test_sigterm_finishes_the_step_saves_and_exits(image_folder, tmp_path):
    args = base_args(image_folder, tmp_path, 'term')
    args = [a for a in args if not a.startswith('epochs=')] + ['epochs=400']
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    p = subprocess.Popen([sys.executable, '-m', 'deepvit_nb.train', *args], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpts = tmp_path / 'term' / 'checkpoints'
    deadline = time.time() + 300
    while not list(ckpts.glob('step_*')) and time.time() < deadline and p.poll() is None: time.sleep(0.2)
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert 'signal received: saved' in out + err
    saved = sorted(ckpts.glob('step_*'))[-1]
    step = int(saved.name.split('_')[1])
    assert f'at step {step}' in out + err
    # --resume auto continues from exactly that step
    r = run_cli(args + ['--resume', 'auto'], cwd=tmp_path, crash_at=step + 1)
    assert f'step {step}' in r.stdout + r.stderr and f'DEEPVIT_CRASH_AT_STEP={step + 1}' in r.stderr


def test_two_processes_stay_identical_and_evaluate_like_one(image_folder, tmp_path):
    launcher = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2',
                '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', '29517']
    args = base_args(image_folder, tmp_path, 'ddp')
    args = [a for a in args if not a.startswith(('epochs=', 'batch_size='))] + ['epochs=1', 'batch_size=4']
    r = run_cli(args, cwd=tmp_path, launcher=launcher)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (r.stdout + r.stderr).count('done in') == 1, r.stdout           # one closing line, not one per process
    summary = json.loads((tmp_path / 'ddp' / 'summary.json').read_text())
    assert summary['processes'] == 2 and summary['ranks_identical'] is True
    ckpt = sorted((tmp_path / 'ddp' / 'checkpoints').glob('step_*'))[-1]
    evals = {}
    for n, launch in (('one', ()), ('two', launcher)):
        r = run_cli(args + ['eval_only=true', f'name=eval_{n}', '--resume', str(ckpt)], cwd=tmp_path, launcher=launch)
        assert r.returncode == 0, r.stderr[-3000:]
        evals[n] = json.loads((tmp_path / f'eval_{n}' / 'eval.json').read_text())
    assert evals['two']['processes'] == 2 and evals['one']['processes'] == 1
    assert evals['one']['top1'] == evals['two']['top1'] and evals['one']['top5'] == evals['two']['top5']
    assert abs(evals['one']['loss'] - evals['two']['loss']) < 1e-6
    # training on from a 2-process checkpoint with 1 process would change the global batch and the data order: refused
    r = run_cli(args + ['epochs=2', '--resume', 'auto'], cwd=tmp_path)
    assert r.returncode == 2 and 'was written by 2 process(es), this launch has 1' in r.stderr, r.stderr[-2000:]


def test_bad_keys_and_types_are_refused_by_name(tmp_path):
    r = run_cli(['epochs=three'], cwd=tmp_path)
    assert r.returncode == 2 and "config key 'epochs' must be int, got 'three'" in r.stderr
    r = run_cli(['learning_rate=0.1'], cwd=tmp_path)
    assert r.returncode == 2 and "unknown config key(s) 'learning_rate'" in r.stderr
    bad = tmp_path / 'bad.yaml'; bad.write_text('model: deepvit_tiny_28\nwarmup: 3\n')
    r = run_cli(['--config', str(bad)], cwd=tmp_path)
    assert r.returncode == 2 and "unknown config key(s) 'warmup'" in r.stderr and 'bad.yaml' in r.stderr
    r = run_cli(['model=deepvit_xxl'], cwd=tmp_path)
    assert r.returncode == 2 and 'unknown model' in r.stderr


def test_bad_data_gives_clear_errors(image_folder, tmp_path):
    r = run_cli(['dataset=imagefolder', f'data_dir={tmp_path}/missing', 'model=deepvit_tiny_32'], cwd=tmp_path)
    assert r.returncode == 2 and f'image folder not found: {tmp_path}/missing/train' in r.stderr
    data = tmp_path / 'data'; shutil.copytree(image_folder, data)
    (data / 'train' / 'd').mkdir()
    r = run_cli(['dataset=imagefolder', f'data_dir={data}', 'model=deepvit_tiny_32', 'img_size=28'], cwd=tmp_path)
    assert r.returncode == 2 and 'class folders without images' in r.stderr and 'train/d' in r.stderr
    shutil.rmtree(data / 'train' / 'd')
    broken = data / 'train' / 'b' / '000003.png'; broken.write_bytes(b'garbage')
    args = ['dataset=imagefolder', f'data_dir={data}', 'model=deepvit_tiny_32', 'img_size=28', 'epochs=1',
            'batch_size=8', f'output_dir={tmp_path}/runs', 'randaug_magnitude=0']
    r = run_cli(args + ['name=strict'], cwd=tmp_path)
    assert r.returncode == 2 and 'cannot read image' in r.stderr and 'b/000003.png' in r.stderr
    r = run_cli(args + ['name=lenient', 'skip_bad_images=true'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]


def test_wrong_channels_for_the_model(image_folder, tmp_path):
    r = run_cli(['dataset=imagefolder', f'data_dir={image_folder}', 'model=deepvit_tiny_28'], cwd=tmp_path)
    assert r.returncode == 2 and 'takes 1-channel images, dataset imagefolder has 3' in r.stderr


def test_non_finite_loss_stops_naming_the_step(image_folder, tmp_path):
    args = base_args(image_folder, tmp_path, 'nan') + ['lr=1e30', 'clip_grad=0', 'warmup_epochs=0']
    r = run_cli(args, cwd=tmp_path)
    assert r.returncode == 1 and ': loss is ' in r.stderr and 'stopped without saving' in r.stderr


def test_default_config_file_is_the_default():
    from dataclasses import asdict
    assert asdict(load_config(ROOT / 'configs' / 'fashion_mnist.yaml')) == asdict(TrainConfig())


def test_imagenet_recipes_load():
    names = sorted(p.stem for p in (ROOT / 'configs' / 'imagenet').glob('*.yaml'))
    assert len(names) >= 9
    for n in names:
        cfg = load_config(ROOT / 'configs' / 'imagenet' / f'{n}.yaml')
        assert cfg.model == n and cfg.dataset == 'imagefolder' and cfg.label_smoothing == 0.1


def test_a_resumed_run_keeps_its_settings(image_folder, uninterrupted, tmp_path):
    args = base_args(image_folder, tmp_path, 'record')
    assert run_cli(args, cwd=tmp_path, crash_at=5).returncode != 0
    config = (tmp_path / 'record' / 'config.yaml').read_text()
    r = run_cli(args + ['--resume', 'auto', 'batch_size=4'], cwd=tmp_path)          # another batch size: refused
    assert r.returncode == 2 and 'was run with batch_size=8; this command asks batch_size=4' in r.stderr, r.stderr
    r = run_cli(args + ['--resume', 'auto', 'lr=0.01'], cwd=tmp_path)
    assert r.returncode == 2 and 'lr=0.001' in r.stderr and 'lr=0.01' in r.stderr, r.stderr
    # only the run's name: its own settings (model, EMA, MixUp, ...) come from its config.yaml
    r = run_cli([f'output_dir={tmp_path}', 'name=record', '--resume', 'auto'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / 'record' / 'config.yaml').read_text() == config            # written once
    assert_same_weights(final_weights(tmp_path / 'record'), final_weights(uninterrupted))


def test_extending_a_finished_run_is_recorded(image_folder, tmp_path):
    args = [a for a in base_args(image_folder, tmp_path, 'extend') if not a.startswith('epochs=')]
    assert run_cli(args + ['epochs=1'], cwd=tmp_path).returncode == 0
    r = run_cli([f'output_dir={tmp_path}', 'name=extend', 'epochs=2', '--resume', 'auto'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'resumed with epochs 1 → 2 (recorded in changes.yaml)' in r.stdout + r.stderr
    changes = yaml.safe_load((tmp_path / 'extend' / 'changes.yaml').read_text())
    assert [(c['key'], c['old'], c['new'], c['at_step']) for c in changes] == [('epochs', 1, 2, 8)]
    assert yaml.safe_load((tmp_path / 'extend' / 'config.yaml').read_text())['epochs'] == 1
    assert len((tmp_path / 'extend' / 'metrics.csv').read_text().splitlines()) == 3     # header, epochs 1 and 2
    summary = json.loads((tmp_path / 'extend' / 'summary.json').read_text())
    assert summary['epochs'] == 2 and summary['steps'] == 16


def test_unreadable_images_are_left_out_counted_and_named(image_folder, tmp_path):
    data = tmp_path / 'data'
    shutil.copytree(image_folder, data)
    (data / 'train' / 'b' / '000003.png').write_bytes(b'not an image')       # 66 files, one of them broken,
    (data / 'train' / 'c' / 'notes.png').write_text('not an image either')   # and one more: 67 files, 65 images
    args = [f'data_dir={data}', 'dataset=imagefolder', 'model=deepvit_tiny_32', 'img_size=28', 'epochs=1',
            'batch_size=8', 'eval_batch_size=8', 'bn_recalibration_batches=1', f'output_dir={tmp_path}', 'name=skip']
    r = run_cli(args, cwd=tmp_path)
    assert r.returncode != 0 and 'cannot read image' in r.stderr      # without the setting, the first bad file stops the run
    r = run_cli(args + ['skip_bad_images=true', 'name=skip2'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '65 training images, 21 for evaluation' in r.stdout
    assert 'left out 2 unreadable train image(s), not counted above' in r.stdout and '000003.png' in r.stdout
    summary = json.loads((tmp_path / 'skip2' / 'summary.json').read_text())
    assert [Path(p).name for p in summary['unreadable_images']['skipped_train']] == ['000003.png', 'notes.png']
    assert summary['unreadable_images']['skipped_eval'] == [] and summary['unreadable_images']['failed_while_reading'] == 0


def test_best_and_final_weights_also_in_safetensors(uninterrupted):
    from safetensors.torch import load_file, safe_open
    for name in ('best_model', 'final_model'):
        ckpt = torch.load(uninterrupted / f'{name}.pth', weights_only=True)
        for key, file in (('state_dict', f'{name}.safetensors'), ('state_dict_ema', f'{name}_ema.safetensors')):
            tensors = load_file(uninterrupted / file)
            assert tensors.keys() == ckpt[key].keys()
            assert all(torch.equal(tensors[k], v) for k, v in ckpt[key].items()), f'{file} differs from {name}.pth'
        with safe_open(uninterrupted / f'{name}.safetensors', 'pt') as f:
            meta = f.metadata()
        assert meta['arch'] == 'deepvit_tiny_32' and json.loads(meta['config'])['img_size'] == 28
    assert not list(uninterrupted.glob('*.tmp'))
