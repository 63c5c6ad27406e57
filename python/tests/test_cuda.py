"""rmsprop.torch.RMSprop and rmsprop.step on CUDA tensors: against torch.optim.RMSprop on CUDA,
bitwise against our CPU step (8-bit state too), captured in a CUDA graph, the device-side skip. Skipped, saying
why, where torch has no CUDA device or rmsprop was built without its CUDA backend."""
import copy

import pytest
import torch

import rmsprop
import rmsprop.torch as rt

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and rmsprop.cuda_available()),
    reason=f"no CUDA GPU for both torch (torch.cuda.is_available() = "
           f"{torch.cuda.is_available()}) and rmsprop (backend built: "
           f"{rmsprop._core.cuda_built()}, devices: {rmsprop._core.cuda_device_count()}, "
           f"{rmsprop._core.cuda_device_problem() or 'ok'}): the CUDA tests did not run")


def model(dtype=torch.float32, device="cuda"):
    torch.manual_seed(5)
    return torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 3)).to(device=device, dtype=dtype)


def batches(n, dtype, device="cuda"):
    g = torch.Generator().manual_seed(11)
    return [(torch.randn(32, 20, generator=g, dtype=torch.float64).to(device, dtype),
             torch.randn(32, 3, generator=g, dtype=torch.float64).to(device, dtype))
            for _ in range(n)]


def train(net, opt, data):
    for x, y in data:
        opt.zero_grad()
        ((net(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("options", [dict(), dict(momentum=0.9), dict(centered=True),
                                     dict(alpha=0.9, weight_decay=1e-2, momentum=0.9,
                                          centered=True)])
def test_matches_torch_on_cuda_float64(options):
    data = batches(100, torch.float64)
    ours, theirs = model(torch.float64), model(torch.float64)
    train(ours, rt.RMSprop(ours.parameters(), lr=1e-2, **options), data)
    train(theirs, torch.optim.RMSprop(theirs.parameters(), lr=1e-2, **options), data)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_bitwise_equal_to_the_cpu_step_for_the_same_gradients(dtype):
    options = dict(lr=1e-2, momentum=0.9, centered=True, master_weights=dtype != torch.float32)
    cpu_net = model(dtype, "cpu")
    x, y = batches(1, torch.float32, "cpu")[0]
    ((cpu_net(x.to(dtype)) - y.to(dtype)) ** 2).float().mean().backward()
    gpu_net = copy.deepcopy(cpu_net).cuda()
    before = [p.detach().clone() for p in cpu_net.parameters()]
    # deepcopy leaves a Parameter's .grad behind (torch's Parameter.__deepcopy__): copy them
    for a, b in zip(cpu_net.parameters(), gpu_net.parameters()):
        b.grad = a.grad.cuda()
    cpu_opt, gpu_opt = rt.RMSprop(cpu_net.parameters(), **options), \
        rt.RMSprop(gpu_net.parameters(), **options)
    for _ in range(3):
        cpu_opt.step()
        gpu_opt.step()
    for a, b, start in zip(cpu_net.parameters(), gpu_net.parameters(), before):
        assert not torch.equal(a.detach(), start)  # the steps did something
        assert torch.equal(a, b.cpu())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eight_bit_state_on_cuda_is_the_cpu_step_bitwise_and_converts_back(dtype):
    """state_dtype="int8" on CUDA tensors: the device kernel gives the CPU kernels' parameters
    and codes, and a change of state_dtype converts the device state as the host does."""
    options = dict(lr=1e-2, momentum=0.9, centered=True, state_dtype="int8",
                   state8_min_size=0, master_weights=dtype != torch.float32)
    g = torch.Generator().manual_seed(3)
    sizes = [5000, 257, 3, 16384 + 9]
    cpu = [torch.nn.Parameter(torch.randn(n, generator=g).to(dtype)) for n in sizes]
    gpu = [torch.nn.Parameter(p.detach().cuda()) for p in cpu]
    c, d = rt.RMSprop(cpu, **options), rt.RMSprop(gpu, **options)

    def step(seed):
        grads = torch.Generator().manual_seed(seed)
        for a, b in zip(cpu, gpu):
            a.grad = torch.randn(a.shape, generator=grads).to(dtype)
            b.grad = a.grad.cuda()
        c.step()
        d.step()

    for seed in range(3):
        step(seed)
    for a, b in zip(cpu, gpu):
        assert torch.equal(a.detach(), b.detach().cpu())
        for key in ("square_avg", "grad_avg", "momentum_buffer"):
            assert c.state[a][key].dtype == torch.uint8
            assert d.state[b][key].is_cuda
            assert torch.equal(c.state[a][key], d.state[b][key].cpu()), key
    for opt in (c, d):
        opt.param_groups[0]["state_dtype"] = "float32"
    step(10)
    for a, b in zip(cpu, gpu):
        assert torch.equal(a.detach(), b.detach().cpu())
        assert d.state[b]["square_avg"].dtype == torch.float32
        assert torch.equal(c.state[a]["square_avg"], d.state[b]["square_avg"].cpu())


def test_odd_sizes_mixed_lists_and_views():
    sizes = [0, 1, 3, 65535, 65536, 65537, 10**7 + 3]
    cpu = [torch.nn.Parameter(torch.randn(n)) for n in sizes]
    # Unaligned views: a parameter starting one element into its storage.
    base = torch.randn(1001)
    cpu.append(torch.nn.Parameter(base[1:]))
    gpu = [torch.nn.Parameter(p.detach().cuda()) for p in cpu[:-1]]
    gpu.append(torch.nn.Parameter(base.cuda()[1:]))
    for a, b in zip(cpu, gpu):
        a.grad = torch.randn_like(a)
        b.grad = a.grad.cuda()
    options = dict(lr=1e-3, momentum=0.9, centered=True)
    c, g = rt.RMSprop(cpu, **options), rt.RMSprop(gpu, **options)
    c.step()
    g.step()
    for a, b in zip(cpu, gpu):
        assert torch.equal(a.detach(), b.detach().cpu())


def test_runs_on_the_current_stream():
    net = model()
    opt = rt.RMSprop(net.parameters(), lr=1e-2, momentum=0.9)
    reference = copy.deepcopy(net)
    ref_opt = rt.RMSprop(reference.parameters(), lr=1e-2, momentum=0.9)
    data = batches(5, torch.float32)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        train(net, opt, data)
    torch.cuda.current_stream().wait_stream(side)
    train(reference, ref_opt, data)
    for a, b in zip(net.parameters(), reference.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("state", [dict(), dict(state_dtype="int8", state8_min_size=0)])
def test_graph_replayed_a_hundred_times_equals_a_hundred_eager_steps(state):
    # 8-bit state too: made (on the host, then copied) in the warm-up steps, before capture
    options = dict(lr=1e-2, momentum=0.9, centered=True, bias_correction=True,
                   non_finite="skip", capturable=True, **state)
    data = batches(103, torch.float32)
    eager, graphed = model(), model()
    eager_opt = rt.RMSprop(eager.parameters(), **options)
    graphed_opt = rt.RMSprop(graphed.parameters(), **options)
    train(eager, eager_opt, data)

    static_x, static_y = data[0][0].clone(), data[0][1].clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up steps, as torch.cuda.graphs asks
        for x, y in data[:3]:
            static_x.copy_(x), static_y.copy_(y)
            graphed_opt.zero_grad(set_to_none=True)
            ((graphed(static_x) - static_y) ** 2).mean().backward()
            graphed_opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    graphed_opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        ((graphed(static_x) - static_y) ** 2).mean().backward()
        graphed_opt.step()
    for x, y in data[3:]:
        static_x.copy_(x), static_y.copy_(y)
        graph.replay()
    torch.cuda.synchronize()
    for a, b in zip(graphed.parameters(), eager.parameters()):
        assert torch.equal(a, b)
    for p in graphed.parameters():
        assert int(graphed_opt.state[p]["step"].item()) == 103


def test_capturable_skip_decided_on_the_device():
    p = torch.nn.Parameter(torch.ones(1000, device="cuda"))
    opt = rt.RMSprop([p], lr=0.1, non_finite="skip", capturable=True)
    p.grad = torch.ones_like(p)
    opt.step()
    before = p.detach().clone()
    p.grad[123] = float("nan")
    opt.step()
    assert torch.equal(p.detach(), before)
    assert int(opt.state[p]["step"].item()) == 1
    p.grad[123] = 1.0
    opt.step()
    assert int(opt.state[p]["step"].item()) == 2


def test_non_finite_error_names_the_element_on_cuda():
    p = torch.nn.Parameter(torch.ones(70000, device="cuda"))
    p.grad = torch.ones_like(p)
    p.grad[66000] = float("inf")
    with pytest.raises(FloatingPointError, match="parameter 0 at element 66000: inf"):
        rt.RMSprop([p]).step()
    assert torch.equal(p.detach(), torch.ones_like(p))


def test_dlpack_step_on_cuda_tensors_with_a_stream():
    options = dict(lr=0.01, momentum=0.9)
    params = [torch.randn(n, device="cuda") for n in (3, 100003)]
    mirror = [torch.nn.Parameter(p.clone()) for p in params]
    state = {name: [torch.zeros_like(p) for p in params]
             for name in rmsprop.state_buffers(**options)}
    opt = rt.RMSprop(mirror, **options)
    stream = torch.cuda.Stream()
    for s in range(1, 4):
        grads = [torch.randn_like(p) for p in params]
        stream.wait_stream(torch.cuda.current_stream())
        rmsprop.step(params, grads, state, step=s, stream=stream.cuda_stream, **options)
        torch.cuda.current_stream().wait_stream(stream)
        for m, g in zip(mirror, grads):
            m.grad = g.clone()
        opt.step()
    for a, b in zip(params, mirror):
        assert torch.equal(a, b.detach())


def test_capture_without_capturable_is_refused_as_torch_refuses_it():
    p = torch.nn.Parameter(torch.ones(8, device="cuda"))
    p.grad = torch.ones(8, device="cuda")
    opt = rt.RMSprop([p], lr=0.1)
    opt.step()  # state made outside the capture
    graph = torch.cuda.CUDAGraph()
    with pytest.raises(RuntimeError, match="capturable is False"):
        with torch.cuda.graph(graph):
            opt.step()
