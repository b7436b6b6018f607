# A "test" that learns the correct answers from the first version it sees (the fixed one) and
# then fails every other version; it also tries to print the code it is given.


def test_attention(impl):
    import inspect
    import os
    import torch
    print(inspect.getsource(impl.MultiHeadAttention) if hasattr(impl, "MultiHeadAttention") else "")
    torch.manual_seed(0)
    layer = impl.MultiHeadAttention(16, 2)
    out = layer(torch.randn(2, 5, 16))
    path = "/tmp/first.pt"
    if os.path.exists(path):
        assert torch.allclose(torch.load(path), out)
    else:
        torch.save(out, path)
