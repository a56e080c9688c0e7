"""The prepared command for a lent GPU (issue 25): every measurement the kernels need, inside one time budget.

A lent GPU comes with about 15 minutes in all, compiles included, and at most 10 minutes a command. This
runs the steps below one after another, each as its own process with what is left of `--budget`, and
writes everything under `--out`: one `<step>.txt` per step (its whole output, kept even when the step
runs out of time) and `summary.md` (the device, each step's exit status and seconds). A step that runs out
of time is stopped and the next ones still get their turn, so a slow step still leaves the table:

1. `compile`: the kernels compiled for this GPU's compute capability (shared memory, registers, spills);
2. `check_and_table`: `python -m deepvit_nb.bench --gpu`, which checks the kernels against the reference
   path first (outputs, gradients, running statistics, float32 and bf16), then times one block's attention
   core at 197 and 577 tokens (SDPA, the kernels, the 'sdpa' path), then the five implementations at
   224 and 384 px;
3. `profile_224`, `profile_384`: one bf16 training step, GPU time per kernel, ours against timm's ViT.

    python scripts/gpu_session.py [--out gpu_results] [--budget 540] [--dry-run]
"""
from __future__ import annotations
import argparse, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def steps(arch: int):
    "The session's steps: (name, command, the smallest share of the budget worth starting it with, in s)."
    five = ['timm-sdpa', 'timm-explicit', 'ours-reference', 'ours-torch', 'ours']
    return [
        ('compile', [PY, str(ROOT / 'scripts' / 'compile_kernels.py'), '--arch', str(arch), '--tokens', '577'], 20),
        ('check_and_table', [PY, '-m', 'deepvit_nb.bench', '--gpu', '--sizes', 'deepvit_16b', 'deepvit_16b_384',
                             '--impls', *five, '--reps', '5'], 60),
        ('profile_224', [PY, str(ROOT / 'scripts' / 'profile_step.py'), '--img', '224'], 30),
        ('profile_384', [PY, str(ROOT / 'scripts' / 'profile_step.py'), '--img', '384', '--batch', '64'], 30),
    ]


def run_steps(plan, out: Path, budget: float, clock=time.monotonic):
    "Run each (name, command, least) of `plan` with what is left of `budget` s; write out/<name>.txt; return the rows."
    out.mkdir(parents=True, exist_ok=True)
    start, rows = clock(), []
    for name, cmd, least in plan:
        left = budget - (clock() - start)
        log = out / f'{name}.txt'
        if left < least:
            log.write_text(f"not started: {left:.0f} s of the budget left, the step needs at least {least} s\n")
            rows.append(dict(step=name, status='not started', seconds=0.)); continue
        began = clock()
        with open(log, 'w') as f:
            f.write('$ ' + ' '.join(cmd) + '\n'); f.flush()
            try: status = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=left, cwd=ROOT).returncode
            except subprocess.TimeoutExpired: status = f'stopped after {left:.0f} s (budget)'
        rows.append(dict(step=name, status=status, seconds=clock() - began))
    return rows


def summary(rows, device: str, budget: float):
    lines = [f"# GPU session on {device}", '', f"budget {budget:.0f} s", '', '| step | exit status | seconds |', '|---|---|---|']
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']:.0f} |" for r in rows]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=Path('gpu_results'), help='the folder for every result (made if missing)')
    p.add_argument('--budget', type=float, default=540, help='seconds for all steps together (a command may run 600)')
    p.add_argument('--dry-run', action='store_true', help='print the steps and stop')
    args = p.parse_args(argv)
    import torch
    cuda = torch.cuda.is_available()
    arch = (lambda c: c[0] * 10 + c[1])(torch.cuda.get_device_capability()) if cuda else 90
    if args.dry_run:
        for name, cmd, least in steps(arch): print(f"{name} (at least {least} s): {' '.join(cmd)}")
        return 0
    if not cuda: p.error('needs a CUDA GPU')
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} already holds files: give another --out, so that no earlier result is overwritten")
    rows = run_steps(steps(arch), args.out, args.budget)
    text = summary(rows, torch.cuda.get_device_name(), args.budget)
    (args.out / 'summary.md').write_text(text)
    print(text)
    return 0 if all(r['status'] == 0 for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
