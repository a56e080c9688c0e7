"torch.compile handles every kind of block without graph breaks, and gives eager's numbers."
import pytest
import torch

from deepvit_nb.models import create_model


@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_compiled_model_matches_eager(mode):
    torch._dynamo.reset()
    torch.manual_seed(0)
    # conv stem (BatchNorm), plain MHSA blocks (SDPA) and Re-attention blocks (folded BatchNorm mix)
    eager = create_model('deepvit_tiny_32', re_attention=3, depth=4, scale_adjustment=0.5)
    twin = create_model('deepvit_tiny_32', re_attention=3, depth=4, scale_adjustment=0.5)
    twin.load_state_dict(eager.state_dict())
    eager.train(mode == 'train'); twin.train(mode == 'train')
    compiled = torch.compile(twin, fullgraph=True)   # fullgraph: any graph break is an error
    x = torch.randn(4, 3, 32, 32)
    if mode == 'eval':
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), eager(x), rtol=1e-4, atol=1e-4)
        return
    out_c, out_e = compiled(x), eager(x)
    torch.testing.assert_close(out_c, out_e, rtol=1e-4, atol=1e-4)
    out_c.square().mean().backward(); out_e.square().mean().backward()
    for (name, a), b in zip(twin.named_parameters(), eager.parameters()):
        scale = b.grad.abs().max().item() + 1e-12
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-3 * scale, msg=name)
    for (name, a), b in zip(twin.named_buffers(), eager.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)   # running statistics updated alike
