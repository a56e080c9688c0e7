"""Compile every fused Re-attention kernel for an NVIDIA GPU on a machine without one.

Triton ships `ptxas`, so the kernels of `deepvit_nb.fused` can be lowered to machine code for, say, an
H100 (sm_90) anywhere. This catches what Triton's interpreter cannot: shapes the GPU code generator
rejects, and programs that need more shared memory than the GPU has. It prints shared memory, registers
and spills per kernel variant, and exits with 1 if any variant does not compile or does not fit.

It compiles with the facts a real launch gives Triton (which pointers and integers are multiples of 16),
so its shared-memory figures are the GPU's: on an H200, launches of `_bwd_dkdv` with 32×16 and 16×32
tiles and of `_bwd_dq` with 32×32 tiles asked for 266, 230 and 257 KB, which is what this script reports.

    python scripts/compile_kernels.py [--arch 90] [--shared-kb 227] [--tiles tiles.json]
"""
import argparse, os, re, subprocess, sys, tempfile

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--arch', type=int, default=90, help='compute capability, e.g. 80 (A100), 90 (H100)')
    p.add_argument('--shared-kb', type=int, default=227, help='shared memory per program the GPU allows')
    p.add_argument('--head-dim', type=int, default=32, help='channels per head (DeepViT-16B: 32)')
    p.add_argument('--heads', type=int, default=12, help='heads (DeepViT-16B: 12)')
    p.add_argument('--tokens', type=int, default=197, help='tokens (224 px, 16 px patches: 197)')
    p.add_argument('--tiles', help='a JSON file of tiles (as scripts/tune_tiles.py --write makes) instead of TILES')
    args = p.parse_args(argv)

    os.environ.pop('TRITON_INTERPRET', None)      # Triton's library functions must be the compiled ones
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import deepvit_nb.fused as fused
    fused.build(interpret=False)                  # compiled kernels, though this machine has no GPU
    if args.tiles: fused.load_tiles(args.tiles)
    target = GPUTarget('cuda', args.arch, 32)
    ptxas = os.path.join(os.path.dirname(triton.__file__), 'backends', 'nvidia', 'bin', 'ptxas')

    def resources(kernel):
        "Registers and spill stores, from ptxas -v on the kernel's PTX."
        with tempfile.NamedTemporaryFile('w', suffix='.ptx', delete=False) as f: f.write(kernel.asm['ptx'])
        arch = f"sm_{args.arch}a" if args.arch >= 90 else f"sm_{args.arch}"
        out = subprocess.run([ptxas, '-v', f'--gpu-name={arch}', f.name, '-o', os.devnull], capture_output=True, text=True)
        os.unlink(f.name)
        info = out.stderr + out.stdout
        regs, spills = re.findall(r'Used (\d+) registers', info), re.findall(r'(\d+) bytes spill stores', info)
        return (int(regs[-1]) if regs else -1), (int(spills[-1]) if spills else -1)

    # Triton specialises a launch on every pointer and integer that is a multiple of 16, and that changes
    # vector widths, layouts and so shared memory; compile with the facts a real launch has. Q, K, V are
    # views of the (B, T, 3, H, d) projection; outputs and gradients are stored heads-last, (B, T, H, d).
    T, H, D = args.tokens, args.heads, args.head_dim
    qkv = dict(b=T * 3 * H * D, h=D, t=3 * H * D)
    heads_last = dict(b=T * H * D, h=D, t=H * D)
    def value(name):
        if name in ('T', 'H', 'D'): return dict(T=T, H=H, D=D)[name]
        prefix, axis = name.rsplit('_', 1)
        return (qkv if prefix in ('sq', 'sk', 'sv') else heads_last)[axis]
    def divisibility(fn, const):
        "Triton's `tt.divisibility` hints, as a launch at these shapes gives them (all pointers are aligned)."
        return {(i,): [['tt.divisibility', 16]] for i, name in enumerate(fn.arg_names)
                if name not in const and name != 'scale' and (name.endswith('_ptr') or value(name) % 16 == 0)}

    def signature(fn, fp32_ptrs, dtype, const):
        sig = {}
        for name in fn.arg_names:
            if name in const: sig[name] = 'constexpr'
            elif name.endswith('_ptr'): sig[name] = '*fp32' if name in fp32_ptrs else f'*{dtype}'
            elif name == 'scale': sig[name] = 'fp32'
            else: sig[name] = 'i32'
        return sig

    rows_ptrs = ('lse_ptr', 'delta_ptr', 'w_ptr', 'm_ptr', 'c_ptr', 'dw_ptr', 'part_ptr')
    k = fused.jit_kernel
    variants = [(k('mix_fwd'), dict(HAS_LSE=True)), (k('mix_fwd'), dict(HAS_LSE=False)), (k('cov_fwd'), {}),
                (k('bwd_dq'), dict(HAS_DO=True, HAS_M=False)), (k('bwd_dq'), dict(HAS_DO=False, HAS_M=True)),
                (k('bwd_dkdv'), dict(HAS_DO=True, HAS_M=False)), (k('bwd_dkdv'), dict(HAS_DO=False, HAS_M=True))]
    dp = max(16, triton.next_power_of_2(args.head_dim))
    print(f"sm_{args.arch}, {T} tokens, {H} heads (padded to {max(16, triton.next_power_of_2(H))}), {D} channels (padded to {dp}); "
          f"tiles: bf16 from TILES, fp32 {fused.FP32_TILES}")
    print('| kernel | flags | inputs | tiles (BM×BN, warps) | shared KB | registers | spill stores (B) |\n|---|---|---|---|---|---|---|')
    ok = True
    for dtype in ('bf16', 'fp32'):
        for fn, flags in variants:
            tiles = fused.FP32_TILES if dtype == 'fp32' else fused.TILES[fn.__name__.lstrip('_')]
            const = dict(HP=max(16, triton.next_power_of_2(H)), DP=dp, BM=tiles['BM'], BN=tiles['BN'], PREC='tf32', **flags)
            label = ', '.join(f"{k}={int(v)}" for k, v in flags.items()) or '–'
            shape = f"{tiles['BM']}×{tiles['BN']}, {tiles['num_warps']}"
            try:
                kernel = triton.compile(ASTSource(fn, signature(fn, rows_ptrs, dtype, const), const, divisibility(fn, const)), target=target,
                                        options=dict(num_warps=tiles['num_warps']))
            except Exception as e:
                print(f"| {fn.__name__} | {label} | {dtype} | {shape} | does not compile: {str(e).splitlines()[0][:200]} | | |")
                ok = False; continue
            shared = kernel.metadata.shared / 1024
            regs, spills = resources(kernel)
            fits = shared <= args.shared_kb
            ok &= fits
            print(f"| {fn.__name__} | {label} | {dtype} | {shape} | {shared:.0f}{'' if fits else ' (too much)'} | {regs} | {spills} |")
    print('all kernels compile and fit' if ok else 'SOME KERNELS DO NOT COMPILE OR FIT')
    return 0 if ok else 1

if __name__ == '__main__':
    sys.exit(main())
