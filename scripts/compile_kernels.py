"""Compile every fused Re-attention kernel for an NVIDIA GPU on a machine without one.

Triton ships `ptxas`, so the kernels of `deepvit_nb.fused` can be lowered to machine code for, say, an
H100 (sm_90) anywhere. This catches what Triton's interpreter cannot: shapes the GPU code generator
rejects, and programs that need more shared memory than the GPU has. For every configuration the
autotuner may pick (`fused.CONFIGS`) it prints shared memory, registers, spill stores, and how many
Hopper `wgmma` and older `mma.sync` tensor-core instructions the PTX holds. It exits with 1 if any
variant does not compile, or if a kernel has no configuration that fits (the autotuner skips those
that do not fit, so one is enough).

It compiles with the facts a real launch gives Triton (which pointers and integers are multiples of 16),
so its shared-memory figures are the GPU's.

    python scripts/compile_kernels.py [--arch 90] [--shared-kb 227] [--only mix_fwd] [--fp32]
"""
import argparse, os, re, subprocess, sys, tempfile

IO = ('q_ptr', 'k_ptr', 'v_ptr', 'u_ptr', 'do_ptr', 'dk_ptr', 'dv_ptr')      # in the input type; the rest is float32
FLAGS = {'mix_fwd': [dict(WITH_VAR=True, AFFINE=False), dict(WITH_VAR=False, AFFINE=True)]}

def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--arch', type=int, default=90, help='compute capability, e.g. 80 (A100), 90 (H100)')
    p.add_argument('--shared-kb', type=int, default=227, help='shared memory per program the GPU allows')
    p.add_argument('--head-dim', type=int, default=32, help='channels per head (DeepViT-16B: 32)')
    p.add_argument('--heads', type=int, default=12, help='heads (DeepViT-16B: 12)')
    p.add_argument('--tokens', type=int, default=197, help='tokens (224 px, 16 px patches: 197)')
    p.add_argument('--only', nargs='+', help='these kernels only (lse_fwd, mix_fwd, bwd_rows, bwd_cols)')
    p.add_argument('--fp32', action='store_true', help='also float32 inputs (TF32 products)')
    return p.parse_args(argv)

def resources(ptxas, ptx, arch):
    "Registers and spill stores, from ptxas -v on the kernel's PTX."
    with tempfile.NamedTemporaryFile('w', suffix='.ptx', delete=False) as f: f.write(ptx)
    gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
    out = subprocess.run([ptxas, '-v', f'--gpu-name={gpu}', f.name, '-o', os.devnull], capture_output=True, text=True)
    os.unlink(f.name)
    info = out.stderr + out.stdout
    regs, spills = re.findall(r'Used (\d+) registers', info), re.findall(r'(\d+) bytes spill stores', info)
    return (int(regs[-1]) if regs else -1), (int(spills[-1]) if spills else -1)

def launch_facts(T, H, D):
    "The integer arguments of a launch at these shapes: Q, K, V are views of the (B, T, 3, H, d) projection, outputs heads-last."
    qkv, heads_last = dict(b=T * 3 * H * D, h=D, t=3 * H * D), dict(b=T * H * D, h=D, t=H * D)
    def value(name):
        if name in ('T', 'D'): return dict(T=T, D=D)[name]
        prefix, axis = name.rsplit('_', 1)
        return (qkv if prefix in ('sq', 'sk', 'sv') else heads_last)[axis]
    return value

def main(argv=None):
    args = parse(argv)
    os.environ.pop('TRITON_INTERPRET', None)      # Triton's library functions must be the compiled ones
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import deepvit_nb.fused as fused
    fused.build(interpret=False)                  # compiled kernels, though this machine has no GPU
    target = GPUTarget('cuda', args.arch, 32)
    ptxas = os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'ptxas')
    T, H, D = args.tokens, args.heads, args.head_dim
    value = launch_facts(T, H, D)

    def compile_one(fn, dtype, const, warps, stages):
        sig = {n: 'constexpr' if n in const else f'*{dtype}' if n in IO else '*fp32' if n.endswith('_ptr')
               else 'fp32' if n == 'scale' else 'i32' for n in fn.arg_names}
        hints = {(i,): [['tt.divisibility', 16]] for i, n in enumerate(fn.arg_names)
                 if n not in const and n != 'scale' and (n.endswith('_ptr') or value(n) % 16 == 0)}
        return triton.compile(ASTSource(fn, sig, const, hints), target=target, options=dict(num_warps=warps, num_stages=stages))

    print("a configuration marked (too much) needs more shared memory than the GPU has: the autotuner skips it")
    print(f"sm_{args.arch}, {T} tokens, {H} heads, {D} channels (padded to {max(16, triton.next_power_of_2(D))})")
    print('| kernel | flags | inputs | BM×BN, HG, warps, stages | shared KB | registers | spill stores (B) | wgmma | mma.sync |\n'
          '|---|---|---|---|---|---|---|---|---|')
    ok, fitting = True, {}            # (kernel, flags, inputs) → how many configurations compile and fit
    for name in args.only or list(fused.CONFIGS):
        fn = fused.jit_kernel(name)
        for dtype in ('bf16', 'fp32') if args.fp32 else ('bf16',):
            for cfg in fused.CONFIGS[name]:
                for flags in FLAGS.get(name, [{}]):
                    tiles = {k: v for k, v in cfg.items() if k not in fused.LAUNCH_OPTIONS}
                    if 'HG' in tiles: tiles['HG'] = fused.head_group(H, tiles['HG'])
                    const = dict(H=H, DP=max(16, triton.next_power_of_2(D)), PREC='tf32', **tiles, **flags)
                    label = ', '.join(f"{k}={int(v)}" for k, v in flags.items()) or '–'
                    shape = f"{tiles['BM']}×{tiles['BN']}, {tiles.get('HG', '–')}, {cfg['num_warps']}, {cfg.get('num_stages', 3)}"
                    try: kernel = compile_one(fn, dtype, const, cfg['num_warps'], cfg.get('num_stages', 3))
                    except Exception as e:
                        print(f"| _{name} | {label} | {dtype} | {shape} | does not compile: {str(e).splitlines()[0][:200]} | | | | |")
                        ok = False; continue
                    group = (name, label, dtype)
                    shared, ptx = kernel.metadata.shared / 1024, kernel.asm['ptx']
                    regs, spills = resources(ptxas, ptx, args.arch)
                    fits = shared <= args.shared_kb
                    fitting[group] = fitting.get(group, 0) + fits
                    print(f"| _{name} | {label} | {dtype} | {shape} | {shared:.0f}{'' if fits else ' (too much)'} | {regs} | {spills} "
                          f"| {ptx.count('wgmma.mma_async')} | {ptx.count('mma.sync')} |", flush=True)
    for (name, label, dtype), n in fitting.items():
        if not n: print(f"_{name} ({label}, {dtype}): no configuration fits in {args.shared_kb} KB"); ok = False
    print('all kernels compile, each with a configuration that fits' if ok else 'SOME KERNELS DO NOT COMPILE OR FIT')
    return 0 if ok else 1

if __name__ == '__main__':
    sys.exit(main())
