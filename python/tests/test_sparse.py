"""Sparse (row) gradients in rmsprop.torch.RMSprop: nn.Embedding(sparse=True), dense and lazy
semantics, errors."""
import pytest
import torch

import rmsprop.torch as rt


def embedding_run(sparse, mode, steps=20, rows=12, all_rows=False, **options):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(rows, 4, sparse=sparse).double()
    head = torch.nn.Linear(4, 1).double()
    opt = rt.RMSprop(list(emb.parameters()) + list(head.parameters()), lr=1e-2,
                     sparse_mode=mode, **options)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.arange(rows) if all_rows else torch.randint(0, rows // 2, (6,), generator=gen)
        target = torch.randn(len(idx), 1, generator=gen, dtype=torch.float64)
        opt.zero_grad()
        loss = ((head(emb(idx)) - target) ** 2).mean()
        loss.backward()
        opt.step()
    return emb.weight.detach().clone(), opt, emb


@pytest.mark.parametrize("options", [{}, dict(momentum=0.9), dict(centered=True),
                                     dict(weight_decay=0.1), dict(flavor="tf1"),
                                     dict(bias_correction=True, centered=True)])
def test_dense_mode_equals_dense_gradients(options):
    sparse, _, _ = embedding_run(True, "dense", **options)
    dense, _, _ = embedding_run(False, "dense", **options)
    # Repeated rows are summed by torch (dense backward) or by us (sparse): float64 rounding.
    assert torch.allclose(sparse, dense, rtol=1e-12, atol=1e-14)


def test_lazy_mode_touches_only_the_rows_it_sees():
    start, _, _ = embedding_run(True, "lazy", steps=0)
    lazy, opt, emb = embedding_run(True, "lazy", momentum=0.9)
    dense, _, _ = embedding_run(True, "dense", momentum=0.9)
    # Rows 6..11 are never looked up: lazy leaves them and their state alone; so does dense,
    # their gradient and momentum being zero — but the looked-up rows differ: dense decays
    # their state on the steps that skipped them.
    assert torch.equal(lazy[6:], start[6:]) and torch.equal(dense[6:], start[6:])
    assert not torch.allclose(lazy[:6], dense[:6])
    state = opt.state[emb.weight]
    assert state["row_steps"][6:].sum() == 0 and state["row_steps"][:6].sum() > 0
    assert int(state["row_steps"].max()) <= state["step"] == 20
    assert torch.equal(state["square_avg"][6:], torch.zeros(6, 4, dtype=torch.float64))


def test_lazy_equals_dense_when_every_row_is_touched_every_step():
    lazy, _, _ = embedding_run(True, "lazy", all_rows=True, momentum=0.9, centered=True)
    dense, _, _ = embedding_run(True, "dense", all_rows=True, momentum=0.9, centered=True)
    assert torch.equal(lazy, dense)


def test_sparse_errors_are_clear():
    with pytest.raises(ValueError, match="sparse_mode='eager'"):
        rt.RMSprop([torch.nn.Parameter(torch.ones(2))], sparse_mode="eager")
    p = torch.nn.Parameter(torch.ones(3, 2))
    p.grad = torch.sparse_coo_tensor([[0, 2]], torch.tensor([[1.0, float("nan")], [1.0, 1.0]]),
                                     (3, 2))
    with pytest.raises(FloatingPointError, match="parameter 0 at element 1"):
        rt.RMSprop([p]).step()
    assert torch.equal(p.detach(), torch.ones(3, 2))
