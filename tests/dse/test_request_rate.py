"""Serving at a request rate (issue 21, item 1): the scheduler's queueing against closed forms,
its step model against the evaluator's own steps, and the SLO outputs."""

import dataclasses
import re

import numpy as np
import pytest

from dse.api import predict
from dse.evaluator import model
from dse.evaluator.efficiency import DEFAULT
from dse.evaluator.scheduler import (
    Engine,
    Requests,
    StepTimes,
    draw_lengths,
    poisson_arrivals,
    simulate,
)
from dse.presets import load_chip, load_workload
from dse.serving import ChipModel, build_step_times, read_trace, serve, shortlist
from hwspace.spec import from_configs

# The figure the issue asks for: H100, Llama-3-8B bf16, prompt 1,024, 256 generated tokens,
# P99 TTFT <= 0.5 s and P99 TPOT <= 50 ms.
_SLO = model.System(ttft_slo_s=0.5, tpot_slo_s=0.05)
_H100 = dict(prompt_len=1024, gen_len=256, system=_SLO)


@pytest.fixture(scope="module")
def capacity_per_s() -> float:
    out = serve("h100", "llama3-8b", request_rate=1.0, n_requests=10, find_max_rate=False,
                **_H100)
    return out["capacity_per_s"]


def _serve(rate: float, n: int, **kw) -> dict:
    return serve("h100", "llama3-8b", request_rate=rate, n_requests=n, find_max_rate=False,
                 **{**_H100, **kw})


def test_step_model_matches_the_evaluators_mixed_step():
    # The evaluator's continuous generate at batch b is one mixed step of b decode tokens at
    # the mid-generation context and b * prompt_len / gen_len prompt tokens (workloads/llm.py
    # mixed_pass); the serving tables rebuild it from decode and prefill steps alone.
    ev = ChipModel(from_configs([load_chip("h100")]), load_workload("llama3-8b"),
                   model.System(max_num_seqs=None), DEFAULT, {})
    steps = build_step_times(ev, Engine(10**6, 64, 2048), 2048, np.array([512, 1024]))
    for b, prompt, gen in ((8, 1024, 256), (64, 1024, 256), (32, 512, 128)):
        mixed = ev.outputs(phase="generate", batch=b, prompt_len=prompt, gen_len=gen)["tpot_s"]
        p, ctx = b * prompt // gen, prompt + gen / 2
        j, w = divmod(ctx / steps.ctx_step_tokens, 1.0)
        kv = (1 - w) * steps.kv_s[b, int(j)] + w * steps.kv_s[b, int(j) + 1]
        attn = p * np.interp(prompt, steps.prompt_tokens, steps.prompt_s_per_token)
        assert steps.linear_s[b + p] + kv + attn == pytest.approx(mixed, rel=0.06)


def test_low_load_ttft_is_an_isolated_requests_ttft():
    # Nearly every request finds the engine idle: its TTFT is its own prefill at batch 1.
    isolated = predict("h100", "llama3-8b", phase="prefill", prompt_len=1024)["ttft_s"]
    assert _serve(0.02, 300)["ttft_p50_s"] == pytest.approx(isolated, rel=0.10)


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_one_sequence_at_a_time_is_an_md1_queue(rho):
    # max_num_seqs = 1 and fixed lengths: each request is served alone in the same time D,
    # so waiting follows M/D/1, Wq = rho D / (2 (1 - rho)) (Pollaczek-Khinchine with zero
    # service variance: the Pollaczek-Khinchine mean-value formula, Kleinrock, Queueing
    # Systems vol. 1, 1975, chapter 5). TTFT = Wq + the prefill step.
    step_s, prompt, gen, n = 0.01, 512, 8, 200_000
    steps = StepTimes(np.full(prompt + 1, step_s), np.zeros((2, 2)), 1e6, np.array([1.0]),
                      np.array([0.0]))
    service_s = gen * step_s  # one prefill step and gen - 1 decode steps
    arrival = poisson_arrivals(rho / service_s, n, seed=3)
    req = Requests(arrival, np.full(n, prompt), np.full(n, gen))
    first, finish = simulate(req, steps, Engine(10**6, max_num_seqs=1,
                                                max_num_batched_tokens=prompt))
    wait_s = rho * service_s / (2 * (1 - rho))
    assert np.mean(first - arrival) == pytest.approx(wait_s + step_s, rel=0.04)
    assert np.all(finish - first == pytest.approx((gen - 1) * step_s))


@pytest.mark.parametrize("load", [0.99, 1.2])
def test_ttft_grows_with_the_horizon_at_capacity(capacity_per_s, load):
    # At and past capacity the queue never settles: P99 TTFT keeps growing with the number
    # of requests; past it, the backlog grows linearly with time.
    p99 = [_serve(load * capacity_per_s, n)["ttft_p99_s"] for n in (2000, 4000, 8000)]
    assert p99[0] < p99[1] < p99[2]
    if load > 1:
        assert 3.0 < p99[2] / p99[0] < 6.0


def test_goodput_at_most_the_rate_and_nil_far_past_capacity(capacity_per_s):
    for load in (0.5, 0.9):
        out = _serve(load * capacity_per_s, 2000)
        assert out["goodput_per_s"] <= load * capacity_per_s
    # At 3x capacity only the first requests, before the backlog builds, meet the SLOs.
    assert _serve(3 * capacity_per_s, 8000)["goodput_per_s"] < 0.02 * 3 * capacity_per_s


def test_max_rate_meets_the_slos_and_ten_percent_more_does_not(capacity_per_s):
    n = 4000
    top = serve("h100", "llama3-8b", request_rate=1.0, n_requests=n, **_H100)
    rate = top["max_rate_per_s"]
    assert 0.5 * capacity_per_s < rate < 1.2 * capacity_per_s
    at, past = _serve(rate, n), _serve(1.1 * rate, n)
    assert at["ttft_p99_s"] <= 0.5 and at["tpot_p99_s"] <= 0.05
    assert past["ttft_p99_s"] > 0.5 or past["tpot_p99_s"] > 0.05


def test_same_seed_same_answer_and_replicas_share_the_load():
    one = _serve(10.0, 1000, seed=7)
    np.testing.assert_equal(one, _serve(10.0, 1000, seed=7))
    assert one["ttft_p99_s"] != _serve(10.0, 1000, seed=8)["ttft_p99_s"]
    # Two replicas at twice the rate see one replica's load whichever way requests are
    # routed, and the system's capacity doubles.
    for routing in ("round_robin", "shortest_queue"):
        two = _serve(20.0, 2000, system=dataclasses.replace(_SLO, chips=2, tp=1),
                     routing=routing)
        assert two["dp"] == 2
        assert two["capacity_per_s"] == pytest.approx(2 * one["capacity_per_s"], rel=0.01)
        for key in ("ttft_p50_s", "tpot_p50_s"):
            assert two[key] == pytest.approx(one[key], rel=0.10)


def test_a_trace_replays_its_requests(tmp_path):
    path = tmp_path / "trace.csv"
    rows = np.array([[0.0, 1024, 64], [0.5, 512, 128], [0.2, 2048, 16], [3.0, 100, 1]])
    np.savetxt(path, rows, delimiter=",", header="arrival_s,prompt_len,gen_len", comments="")
    req = read_trace(path)
    assert list(req.arrival_s) == [0.0, 0.2, 0.5, 3.0] and list(req.gen_len) == [64, 16, 128, 1]
    out = serve("h100", "llama3-8b", request_rate=None, trace=path, find_max_rate=False,
                system=_SLO)
    assert out["n_requests"] == 4 and out["goodput_per_s"] == pytest.approx(1.0)


def test_a_request_larger_than_the_kv_cache_is_refused_not_queued_forever():
    steps = StepTimes(np.full(65, 0.01), np.zeros((3, 2)), 1e6, np.array([1.0]),
                      np.array([0.0]))
    req = Requests(np.array([0.0, 0.1]), np.array([64, 64]), np.array([2000, 8]))
    first, finish = simulate(req, steps, Engine(kv_blocks=10, max_num_seqs=2,
                                                max_num_batched_tokens=64))
    assert np.isinf(first[0]) and finish[1] == pytest.approx(0.1 + 8 * 0.01)


@pytest.mark.parametrize("kw, field", [
    (dict(request_rate=0.0), "request_rate"),
    (dict(request_rate=None), "request_rate"),
    (dict(request_rate=1.0, routing="random"), "routing"),
    (dict(request_rate=1.0, prompt_len=dict(dist="normal", mean=5)), "prompt_len"),
    (dict(request_rate=1.0, system=model.System(max_num_seqs=4096)), "max_num_seqs"),
    (dict(request_rate=1.0, max_num_batched_tokens=0.5), "max_num_batched_tokens"),
    (dict(request_rate=1.0, seed=-1), "seed"),
    (dict(request_rate=1.0, draft="llama3-8b"), "draft"),
    (dict(request_rate=1.0, prompt_len=8000, gen_len=500), "prompt_len + gen_len"),
])
def test_bad_input_names_the_field(kw, field):
    with pytest.raises(ValueError, match=re.escape(field)) as err:
        serve("h100", "llama3-8b", n_requests=10, find_max_rate=False, **kw)
    assert "\n" not in str(err.value)


def test_drawn_lengths_have_the_mean_and_range_asked():
    logn = draw_lengths("gen_len", dict(dist="lognormal", mean=256, sigma=0.8), 20_000, 0, 8191)
    assert np.mean(logn) == pytest.approx(256, rel=0.03) and logn.min() >= 1
    uni = draw_lengths("prompt_len", dict(dist="uniform", low=10, high=20), 5000, 0, 8191)
    assert uni.min() == 10 and uni.max() == 20
    assert np.array_equal(draw_lengths("gen_len", 64, 3, 0, 8191), [64, 64, 64])


def test_shortlist_keeps_the_candidates_near_the_analytical_front():
    rate = np.array([10.0, 9.0, 4.0, np.nan, 30.0, 5.0])
    cost = np.array([1.0, 1.0, 1.0, 1.0, 10.0, 0.0])
    # requests/s per $: 10, 9, 4, -, 3, - ; within a factor 2 of the best: 10 and 9.
    assert list(shortlist(rate, cost, factor=2.0)) == [True, True, False, False, False, False]
    assert shortlist(rate, cost, factor=1.0, min_keep=3).sum() == 3
    assert not shortlist(np.array([np.nan]), np.array([1.0])).any()


def test_an_expert_parallel_split_serves_on_every_chip_of_the_system():
    # Mixtral 8x7B (93 GB in 16 bit) on 8 H100s: the analytical best split holds the experts
    # over 8 expert groups. A replica of ep x tp x pp chips keeps all 8 busy; one of tp x pp
    # chips (ep dropped) was a single H100, which cannot hold the model.
    out = serve("h100", "mixtral-8x7b", request_rate=1.0, n_requests=50, find_max_rate=False,
                prompt_len=1024, gen_len=256, system=model.System(chips=8))
    assert out["fits"] and out["ep"] > 1
    assert out["ep"] * out["tp"] * out["pp"] * out["dp"] == 8
