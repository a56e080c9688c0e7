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


# runs: a small finished run to copy, resume and lock
def tiny_args(data, out, name, *more):
    return [f'data_dir={data}', 'dataset=imagefolder', 'model=deepvit_tiny_32', 'img_size=28', 'epochs=1', 'batch_size=8',
            'eval_batch_size=8', 'bn_recalibration_batches=1', 'ema_decay=0.9', f'output_dir={out}', f'name={name}', *more]


@pytest.fixture(scope='module')
def finished_run(image_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp('runs')
    r = run_cli(tiny_args(image_folder, out, 'first'), cwd=out)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / 'first'


# 7. a copied run folder resumes under its new name, and says so
def test_a_copied_run_folder_resumes_under_its_new_name(finished_run, tmp_path):
    import shutil, yaml
    copy = tmp_path / 'copied'
    shutil.copytree(finished_run, copy)
    r = run_cli(['name=copied', f'output_dir={tmp_path}', 'epochs=2', '--resume', 'auto'], cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    changes = {c['key']: (c['old'], c['new']) for c in yaml.safe_load((copy / 'changes.yaml').read_text())}
    assert changes['name'] == ('first', 'copied') and changes['epochs'] == (1, 2)
    assert json.loads((copy / 'summary.json').read_text())['epochs'] == 2


# 4. one writer per run folder: a live holder refuses a second run; a stale lock is taken over
def test_a_second_writer_is_refused(finished_run, tmp_path):
    import shutil, socket, os
    folder = tmp_path / 'locked'
    shutil.copytree(finished_run, folder)
    holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    try:
        (folder / 'run.lock').write_text(f'{socket.gethostname()} {holder.pid}')
        r = run_cli(['name=locked', f'output_dir={tmp_path}', 'epochs=2', '--resume', 'auto'], cwd=tmp_path)
        assert r.returncode == 2 and f'is in use by process {holder.pid}' in r.stderr, r.stderr[-2000:]
        assert not (folder / 'changes.yaml').exists()                   # nothing written
    finally: holder.kill(); holder.wait()
    r = run_cli(['name=locked', f'output_dir={tmp_path}', '--resume', 'auto'], cwd=tmp_path)   # the holder is gone now
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (folder / 'run.lock').exists()                           # given up at the end


# 5. a write that fails names the file and the cause, and leaves no partial checkpoint
def test_a_failed_checkpoint_write_is_named_and_cleaned_up(tmp_path, monkeypatch):
    from accelerate import Accelerator
    from deepvit_nb.train import TrainState, save_checkpoint, _save_model_file
    acc = Accelerator(cpu=True)
    save_checkpoint(acc, tmp_path, TrainState(step=3), keep_last=2)      # an earlier, good checkpoint
    def full_disk(*args, **kw): raise RuntimeError('[enforce fail at inline_container.cc:603] . unexpected pos 1466624 vs 1466516')
    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(OSError) as e: save_checkpoint(acc, tmp_path, TrainState(step=6), keep_last=2)
    msg = str(e.value)
    assert f'could not write {tmp_path}/checkpoints/step_00000006' in msg and 'unexpected pos' in msg, msg
    assert f'the newest checkpoint is still {tmp_path}/checkpoints/step_00000003' in msg, msg
    assert sorted(p.name for p in (tmp_path / 'checkpoints').iterdir()) == ['step_00000003']
    with pytest.raises(OSError, match=f'could not write {tmp_path}/best_model.pth'):
        _save_model_file(tmp_path / 'best_model.pth', create_model('deepvit_tiny_28', depth=1), None, 1, 'deepvit_tiny_28', {})
    assert not list(tmp_path.glob('*.tmp'))


# 10. which weights a file holds is recorded, and every loader takes the same ones by default (the state_dict)
def test_every_loader_takes_the_same_weights(finished_run, tmp_path):
    import timm
    from deepvit_nb.interop import register_timm_models
    from safetensors import safe_open
    register_timm_models()                      # what `import deepvit_nb` does when timm is there (chapter 10)
    summary = json.loads((finished_run / 'summary.json').read_text())
    for name, weights, metrics in (('final_model', 'state_dict', summary['final']), ('final_model_ema', 'state_dict_ema', summary['final_ema'])):
        with safe_open(str(finished_run / f'{name}.safetensors'), 'pt') as f: meta = f.metadata()
        assert meta['weights'] == weights and json.loads(meta['metrics']) == metrics, (name, meta)
    pth = finished_run / 'final_model.pth'
    ours = create_model('deepvit_tiny_32', num_classes=3, img_size=28, pretrained=str(pth))
    via_timm = timm.create_model('deepvit_tiny_32', pretrained=True, num_classes=3, img_size=28,
                                 pretrained_cfg_overlay=dict(file=str(pth)))
    from_safetensors = create_model('deepvit_tiny_32', num_classes=3, img_size=28, pretrained=str(finished_run / 'final_model.safetensors'))
    raw = torch.load(pth, weights_only=True)
    assert not torch.equal(raw['state_dict']['head.weight'], raw['state_dict_ema']['head.weight'])   # they differ
    for m in (ours, via_timm, from_safetensors): assert torch.equal(m.head.weight, raw['state_dict']['head.weight'])
    r = convert(pth, 'as_ema', '--model', 'deepvit_tiny_32', '--ema', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / 'as_ema' / 'config.json').read_text())['weights'] == 'state_dict_ema'
    assert torch.equal(DeepViT.from_pretrained(tmp_path / 'as_ema').head.weight, raw['state_dict_ema']['head.weight'])


def undecodable_png(path):
    "A PNG whose chunks are all well formed (PIL's verify passes) but whose pixel data does not inflate."
    import struct, zlib
    from PIL import Image
    Image.fromarray(torch.randint(0, 256, (28, 28), dtype=torch.uint8).numpy()).save(path)
    raw = bytearray(path.read_bytes())
    at = raw.index(b'IDAT')
    n = struct.unpack('>I', raw[at - 4:at])[0]
    raw[at + 4:at + 4 + n] = bytes((b * 7 + 3) % 256 for b in raw[at + 4:at + 4 + n])       # scrambled data...
    raw[at + 4 + n:at + 8 + n] = struct.pack('>I', zlib.crc32(bytes(raw[at:at + 4 + n])))    # ...with a correct CRC
    path.write_bytes(bytes(raw))
    with Image.open(path) as im: im.verify()                  # passes the check made when the folder is opened
    return path


# 3. an evaluation image that fails to decode is left out and named, not replaced by the next one
def test_an_undecodable_evaluation_image_is_dropped_and_named(image_folder, tmp_path):
    import shutil
    data = tmp_path / 'data'
    shutil.copytree(image_folder, data)
    bad = undecodable_png(data / 'val' / 'b' / '999999.png')
    n_val = sum(1 for _ in (data / 'val').rglob('*.png'))
    r = run_cli(tiny_args(data, tmp_path / 'runs', 'bad', 'skip_bad_images=true'), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / 'runs' / 'bad' / 'summary.json').read_text())
    assert summary['unreadable_images']['failed_eval'] == [str(bad)], summary['unreadable_images']
    assert summary['unreadable_images']['skipped_eval'] == []
    assert summary['final']['images'] == n_val - 1                # counted once each, the bad one not at all


def _descendants(pid):
    "Process ids below `pid` (children, their children, ...)."
    out, todo = [], [pid]
    while todo:
        kids = subprocess.run(['ps', '-o', 'pid=', '--ppid', str(todo.pop())], capture_output=True, text=True).stdout.split()
        out += map(int, kids); todo += map(int, kids)
    return out


def _rank_of(pid):
    try: env = Path(f'/proc/{pid}/environ').read_bytes().split(b'\0')
    except OSError: return None
    ranks = [e.split(b'=', 1)[1] for e in env if e.startswith(b'RANK=')]
    return int(ranks[0]) if ranks else None


# 6. a frozen peer: the others give up after dist_timeout seconds instead of PyTorch's 30 minutes
def test_a_frozen_peer_fails_the_run_after_dist_timeout(image_folder, tmp_path):
    import os, signal, time
    launcher = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', '29531',
                '-m', 'deepvit_nb.train', *tiny_args(image_folder, tmp_path, 'frozen', 'epochs=50', 'batch_size=4',
                                                     'checkpoint_every=2', 'dist_timeout=15')]
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}
    proc = subprocess.Popen(launcher, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while not list((tmp_path / 'frozen' / 'checkpoints').glob('step_*')):       # training is under way
            assert proc.poll() is None and time.time() < deadline, proc.stdout.read()[-3000:] if proc.poll() is not None else 'no start'
            time.sleep(0.5)
        peer = next(p for p in _descendants(proc.pid) if _rank_of(p) == 1)
        os.kill(peer, signal.SIGSTOP)
        stopped = time.time()
        out, _ = proc.communicate(timeout=240)
        waited = time.time() - stopped
    finally:
        for p in _descendants(proc.pid) + [proc.pid]:
            try: os.kill(p, signal.SIGCONT); os.kill(p, signal.SIGKILL)
            except ProcessLookupError: pass
    assert proc.returncode != 0, out[-3000:]
    assert waited < 200, waited                          # not PyTorch's 30 minutes


# issue 21: sync_bn on CPU processes is refused by name (DDP takes SyncBatchNorm on GPUs only)
def test_sync_bn_on_cpu_processes_is_refused_by_name(image_folder, tmp_path):
    launcher = [sys.executable, '-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
                '--mixed_precision', 'no', '--dynamo_backend', 'no', '--main_process_port', '29541']
    r = run_cli(tiny_args(image_folder, tmp_path, 'sync', 'sync_bn=true'), cwd=tmp_path, launcher=launcher)
    assert r.returncode != 0 and 'sync_bn=true needs CUDA devices' in r.stderr, r.stderr[-3000:]
    r = run_cli(tiny_args(image_folder, tmp_path, 'one', 'sync_bn=true'), cwd=tmp_path)      # one process: nothing to sync
    assert r.returncode == 0, r.stderr[-3000:]
