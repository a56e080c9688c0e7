"SyncBatchNorm across processes: two gloo processes, each on a slice of a batch, give what one process gives on the whole batch."
import copy, os, socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from deepvit_nb.attention import ReAttention, norm_variants

SLICES = (slice(0, 3), slice(3, 5))       # unequal shares: the counts must be added too, not only the sums of squares


def make(norm='batch/sync', drop=0.):
    "A Re-attention with trained-looking weights and the named Norm from `norm_variants`."
    torch.manual_seed(0)
    m = ReAttention(24, 4, qkv_bias=True, attn_drop=drop)
    m.var_norm = copy.deepcopy(norm_variants(4)[norm])
    with torch.no_grad():
        for p in m.parameters(): p.add_(torch.randn_like(p) * 0.1)
    return m


def run(m, x, path, amp=False):
    "Output, input gradient, parameter gradients (loss = Σ out², so slices add up) and running statistics."
    x = x.clone().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp): out = m(x, path=path)
    grads = torch.autograd.grad(out.float().pow(2).sum(), [x, *m.parameters()])
    bn = m.var_norm
    return dict(out=out.detach().float(), grad_x=grads[0].float(), grads=[g.float() for g in grads[1:]],
                running=(bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()))


def cases():
    "(path, amp): every fast path that takes a training call with SyncBatchNorm here (its own `refusal` says), fp32 and bf16."
    m = make().train()
    q = m.split_heads(torch.zeros(1, 9, 24))[0]
    return [(p, amp) for p in ReAttention.PATHS if p != 'reference' and m.refusal(p, q) is None for amp in (False, True)]


def worker(rank, world, port, folder):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    x = torch.load(Path(folder) / 'x.pt')[SLICES[rank]]
    results = {}
    for path, amp in cases():
        m = make().train()
        assert m.refusal(path, m.split_heads(x)[0]) is None, path
        r = run(m, x, path, amp)
        for g in r['grads']: dist.all_reduce(g)          # what DDP does (as a mean; here a sum, for the loss Σ out²)
        results[f'{path}/{amp}'] = r
    plain = make('batch').train()                         # the same slices without synchronisation, to show they differ
    results['unsynced'] = run(plain, x, 'folded')
    torch.save(results, Path(folder) / f'rank{rank}.pt')
    dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp('syncbn')
    torch.manual_seed(1)
    torch.save(torch.randn(5, 9, 24), folder / 'x.pt')
    mp.spawn(worker, args=(2, free_port(), str(folder)), nprocs=2, join=True)
    return folder, [torch.load(folder / f'rank{r}.pt') for r in range(2)]


def close(a, b, tol):
    assert ((a - b).norm() / b.norm()).item() <= tol, ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize('path,amp', cases())
def test_two_processes_equal_one(two_processes, path, amp):
    folder, ranks = two_processes
    x = torch.load(folder / 'x.pt')
    tol = 2e-5 if not amp else 3e-2
    one = run(make().train(), x, 'reference')                  # one process, the whole batch: SyncBatchNorm is BatchNorm
    got = [r[f'{path}/{amp}'] for r in ranks]
    close(torch.cat([g['out'] for g in got]), one['out'], tol)
    close(torch.cat([g['grad_x'] for g in got]), one['grad_x'], tol)
    for a, b in zip(got[0]['grads'], one['grads']):
        if b.norm() > 1e-3 * one['grad_x'].norm(): close(a, b, tol)    # Θ's bias: 0 up to rounding on both sides
    for g in got:                                                      # every process holds the same running statistics
        for a, b in zip(g['running'], one['running']): close(a.float(), b.float(), tol if a.dtype.is_floating_point else 0)


def test_the_cases_are_the_fast_paths_that_take_batch_statistics():
    test = {p for p, _ in cases()}
    assert {'folded', 'checkpoint', 'mapless'} <= test and 'sdpa' not in test   # 'sdpa' forms no maps: no statistics


def test_unsynced_slices_differ(two_processes):
    "Without synchronisation the same slices give another answer: the test above can fail."
    folder, ranks = two_processes
    one = run(make().train(), torch.load(folder / 'x.pt'), 'reference')
    out = torch.cat([r['unsynced']['out'] for r in ranks])
    assert ((out - one['out']).norm() / one['out'].norm()).item() > 1e-2
