"""A serving engine's scheduler at a request rate: a discrete-event loop over engine steps.

Requests arrive (Poisson or a trace), wait in their replica's queue, and join the running
batch under the engine's cap on sequences and its token budget per step, while their whole
KV cache fits (continuous batching, Yu et al., Orca, OSDI 2022). Each step first gives every
decoding sequence its one token, then fills the rest of the budget with prompt chunks, the
oldest first (chunked prefill: Agrawal et al., Sarathi-Serve, OSDI 2024; vLLM's scheduler
orders decodes before prefills). A step's time comes from ``StepTimes``, tables the caller
builds from the evaluator (dse.serving). Pure: numpy and numba, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dse.evaluator.columns import KV_BLOCK_TOKENS, compiled
from dse.evaluator.model import MAX_NUM_SEQS
# The routings and the token budget are scenario settings: their schema owns them.
from workloads.scenario import MAX_NUM_BATCHED_TOKENS, ROUTINGS

__all__ = ["Engine", "StepTimes", "Requests", "ROUTINGS", "MAX_NUM_BATCHED_TOKENS",
           "poisson_arrivals", "draw_lengths", "simulate", "summarize", "max_rate"]

_RATE_STEPS = 40  # bisection steps of max_rate at most (2**-40: far below any tolerance)


@dataclass(frozen=True)
class Engine:
    """One serving engine per data-parallel replica: its caps and its KV capacity."""

    kv_blocks: int  # KV cache per replica, in blocks of KV_BLOCK_TOKENS tokens
    max_num_seqs: int = MAX_NUM_SEQS
    max_num_batched_tokens: int = MAX_NUM_BATCHED_TOKENS
    replicas: int = 1
    routing: str = "round_robin"  # or "shortest_queue": fewest requests waiting or running


@dataclass(frozen=True)
class StepTimes:
    """Time of one engine step of one replica, s, as three additive terms:
    ``linear_s[t]``: ``t`` tokens through the weights (0 <= t <= max_num_batched_tokens);
    ``kv_s[n, j]``: the KV reads of ``n`` decoding sequences at context ``j * ctx_step``
    tokens, (max_num_seqs + 1, n_ctx); ``prompt_s_per_token(prompt_len)``: a prompt
    token's attention to its prompt, at the grid ``prompt_tokens`` (increasing)."""

    linear_s: np.ndarray
    kv_s: np.ndarray
    ctx_step_tokens: float
    prompt_tokens: np.ndarray
    prompt_s_per_token: np.ndarray


@dataclass(frozen=True)
class Requests:
    """Requests in arrival order: arrival_s, prompt_len and gen_len, each (n,)."""

    arrival_s: np.ndarray
    prompt_len: np.ndarray
    gen_len: np.ndarray


def poisson_arrivals(rate_per_s: float, n: int, seed: int) -> np.ndarray:
    """Arrival times, s, (n,), of a Poisson process of ``rate_per_s`` starting at 0."""
    if not (_is_number(rate_per_s) and np.isfinite(rate_per_s) and rate_per_s > 0):
        raise ValueError(f"request_rate must be a finite number > 0, got {rate_per_s!r}")
    gaps = np.random.default_rng(seed).exponential(1.0, n)
    return (np.cumsum(gaps) - gaps[0]) / rate_per_s


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def draw_lengths(field: str, spec, n: int, seed: int, high: int) -> np.ndarray:
    """Token counts, (n,) int64, in [1, high]: ``spec`` is a whole number (fixed), or
    {"dist": "uniform", "low", "high"}, or {"dist": "lognormal", "mean", "sigma"} (the
    mean of the tokens, sigma of their log; rounded, clipped to [1, high])."""
    if _is_number(spec) and spec == int(spec) and 1 <= spec <= high:
        return np.full(n, int(spec), np.int64)
    given = spec if isinstance(spec, dict) else {}
    values = [given.get(k) for k in ("low", "high", "mean", "sigma")]
    low, top, mean, sigma = (float(v) if _is_number(v) else np.nan for v in values)
    rng = np.random.default_rng(seed)
    if given.get("dist") == "uniform" and 1 <= low <= top <= high:
        return rng.integers(int(low), int(top) + 1, n).astype(np.int64)
    if given.get("dist") == "lognormal" and 1 <= mean <= high and 0 <= sigma <= 10:
        # E[exp(N(mu, s^2))] = exp(mu + s^2 / 2): mu puts the mean where asked.
        mu = np.log(mean) - sigma ** 2 / 2.0
        return np.clip(np.rint(rng.lognormal(mu, sigma, n)), 1, high).astype(np.int64)
    raise ValueError(f"{field} must be a whole number in [1, {high}], {{dist: uniform, low, "
                     f"high}} with 1 <= low <= high <= {high}, or {{dist: lognormal, mean in "
                     f"[1, {high}], sigma in [0, 10]}}; got {spec!r}")


def simulate(req: Requests, steps: StepTimes, engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """Serve ``req`` on ``engine.replicas`` replicas.

    Returns:
        (first_s, finish_s), each (n,): when each request's first token and last token left
        the engine, s; inf for a request whose KV cache exceeds a whole replica's.
    """
    _check(req, engine, steps)
    n, r, s = len(req.arrival_s), engine.replicas, engine.max_num_seqs
    blocks = -(-(req.prompt_len + req.gen_len) // KV_BLOCK_TOKENS)
    attn = np.interp(req.prompt_len, steps.prompt_tokens, steps.prompt_s_per_token)
    out = np.full((2, n), np.nan)
    per_req = np.zeros((3, n), np.int64)  # tokens prefilled, tokens generated, next in queue
    per_rep = np.zeros((5, r), np.int64)  # queue head, tail, running, free blocks, in system
    per_rep[0], per_rep[3] = -1, engine.kv_blocks
    slots = np.zeros((2, r, s), np.int64)  # running request, its tokens in the current step
    _run(req.arrival_s, req.prompt_len.astype(np.int64), req.gen_len.astype(np.int64),
         blocks.astype(np.int64), attn, steps.linear_s, steps.kv_s, steps.ctx_step_tokens,
         engine.max_num_batched_tokens, engine.kv_blocks, ROUTINGS.index(engine.routing),
         out, per_req, per_rep, np.full(r, np.inf), slots)
    return out[0], out[1]


def _check(req: Requests, engine: Engine, steps: StepTimes) -> None:
    """ValueError naming the request or engine field that cannot run."""
    if len(req.arrival_s) and (np.any(np.diff(req.arrival_s) < 0)
                               or min(req.prompt_len.min(), req.gen_len.min()) < 1):
        raise ValueError("requests: arrival_s must be sorted and prompt_len and gen_len >= 1")
    if engine.routing not in ROUTINGS:
        raise ValueError(f"routing = {engine.routing!r}; allowed: {', '.join(ROUTINGS)}")
    if not 1 <= engine.max_num_seqs <= engine.max_num_batched_tokens:
        # vLLM refuses a budget below the cap: every running sequence decodes each step.
        raise ValueError(f"max_num_seqs must be in [1, max_num_batched_tokens = "
                         f"{engine.max_num_batched_tokens}], got {engine.max_num_seqs}")
    if engine.replicas < 1 or engine.kv_blocks < 0:
        raise ValueError(f"replicas must be >= 1 and kv_blocks >= 0, got {engine.replicas} "
                         f"and {engine.kv_blocks}")
    if (len(steps.linear_s) <= engine.max_num_batched_tokens
            or len(steps.kv_s) <= engine.max_num_seqs):
        raise ValueError("step times must cover max_num_batched_tokens tokens and "
                         "max_num_seqs sequences")


@compiled
def _run(arrival, prompt, gen, blocks, attn, linear_s, kv_s, ctx_step, budget, kv_total,
         routing, out, per_req, per_rep, step_end, slots):
    """The event loop: the next event is the earliest of the next arrival and the end of
    some replica's step; an arrival joins a replica's queue and wakes it when idle."""
    n, i = arrival.shape[0], 0
    while True:
        r = np.argmin(step_end)
        if i < n and arrival[i] <= step_end[r]:
            q = _route(i, routing, per_rep)
            _enqueue(i, q, per_req, per_rep)
            if step_end[q] == np.inf:
                step_end[q] = _form_step(q, arrival[i], prompt, gen, blocks, attn, linear_s,
                                         kv_s, ctx_step, budget, kv_total, out, per_req,
                                         per_rep, slots)
            i += 1
        elif step_end[r] < np.inf:
            _end_step(r, step_end[r], prompt, gen, blocks, out, per_req, per_rep, slots)
            step_end[r] = _form_step(r, step_end[r], prompt, gen, blocks, attn, linear_s,
                                     kv_s, ctx_step, budget, kv_total, out, per_req, per_rep,
                                     slots)
        else:
            return i


@compiled
def _route(i, routing, per_rep):
    """The replica request ``i`` joins: round robin, or the fewest requests in system."""
    if routing == 0:
        return i % per_rep.shape[1]
    return np.argmin(per_rep[4])


@compiled
def _enqueue(i, q, per_req, per_rep):
    """Request ``i`` joins the tail of replica ``q``'s queue (a linked list)."""
    per_req[2, i] = -1
    if per_rep[0, q] < 0:  # an empty queue
        per_rep[0, q] = i
    else:
        per_req[2, per_rep[1, q]] = i
    per_rep[1, q] = i
    per_rep[4, q] += 1


@compiled
def _form_step(r, t0, prompt, gen, blocks, attn, linear_s, kv_s, ctx_step, budget, kv_total,
               out, per_req, per_rep, slots):
    """Schedule replica ``r``'s step starting at ``t0``: decodes first, then the running
    prompts' chunks, then queued requests while the sequence cap, budget and KV allow.
    Returns the step's end, s (inf: nothing to run)."""
    left, decodes, ctx_sum, chunk_tokens, chunk_s = budget, 0, 0.0, 0, 0.0
    for k in range(per_rep[2, r]):  # every decoding sequence advances one token
        j = slots[0, r, k]
        slots[1, r, k] = 0
        if per_req[0, j] == prompt[j]:
            decodes += 1
            ctx_sum += prompt[j] + per_req[1, j]
            left -= 1
    for k in range(per_rep[2, r]):  # prompts already admitted continue, oldest first
        j = slots[0, r, k]
        if per_req[0, j] < prompt[j]:
            c = min(prompt[j] - per_req[0, j], left)
            slots[1, r, k], left = c, left - c
            chunk_tokens, chunk_s = chunk_tokens + c, chunk_s + c * attn[j]
    while per_rep[0, r] >= 0 and per_rep[2, r] < slots.shape[2] and left > 0:
        j = per_rep[0, r]
        if blocks[j] > kv_total:  # can never fit: refused, not queued forever
            out[0, j] = out[1, j] = np.inf
            _pop(r, per_req, per_rep)
            per_rep[4, r] -= 1
            continue
        # NOTE: a request reserves the KV blocks of its whole answer on admission. vLLM
        # allocates blocks as tokens come and preempts a sequence when they run out; the
        # reservation never preempts, and admits fewer sequences only while KV is the limit.
        if blocks[j] > per_rep[3, r]:
            break  # FIFO: the head waits for KV room, the requests behind it too
        _pop(r, per_req, per_rep)
        per_rep[3, r] -= blocks[j]
        c = min(prompt[j], left)
        k = per_rep[2, r]
        slots[0, r, k], slots[1, r, k] = j, c
        per_rep[2, r] += 1
        per_req[0, j] = per_req[1, j] = 0
        left -= c
        chunk_tokens, chunk_s = chunk_tokens + c, chunk_s + c * attn[j]
    if decodes + chunk_tokens == 0:
        return np.inf
    return t0 + linear_s[decodes + chunk_tokens] + chunk_s + _kv_time(kv_s, ctx_step, decodes,
                                                                      ctx_sum)


@compiled
def _pop(r, per_req, per_rep):
    """The head of replica ``r``'s queue leaves it."""
    j = per_rep[0, r]
    per_rep[0, r] = per_req[2, j]


@compiled
def _kv_time(kv_s, ctx_step, decodes, ctx_sum):
    """KV reads of ``decodes`` sequences at their mean context: linear between grid points
    (KV bytes grow linearly with the context), extrapolated past the last."""
    if decodes == 0:
        return 0.0
    x = ctx_sum / decodes / ctx_step
    j = min(int(x), kv_s.shape[1] - 2)
    w = x - j
    return (1.0 - w) * kv_s[decodes, j] + w * kv_s[decodes, j + 1]


@compiled
def _end_step(r, t, prompt, gen, blocks, out, per_req, per_rep, slots):
    """Account replica ``r``'s step ending at ``t``: tokens out, first tokens when a prompt
    completes, finished requests leave and free their KV blocks (order kept)."""
    kept = 0
    for k in range(per_rep[2, r]):
        j, c = slots[0, r, k], slots[1, r, k]
        if per_req[0, j] == prompt[j]:
            per_req[1, j] += 1
        elif c > 0:
            per_req[0, j] += c
            if per_req[0, j] == prompt[j]:  # the step that ends a prompt samples a token
                per_req[1, j] = 1
                out[0, j] = t
        if per_req[1, j] == gen[j]:
            out[1, j] = t
            per_rep[3, r] += blocks[j]
            per_rep[4, r] -= 1
        else:
            slots[0, r, kept] = j
            kept += 1
    per_rep[2, r] = kept
    return kept


def summarize(req: Requests, first_s: np.ndarray, finish_s: np.ndarray, rate_per_s: float,
              ttft_slo_s: float, tpot_slo_s: float) -> dict[str, float]:
    """Percentiles of TTFT and TPOT, s, goodput (the offered rate times the share of requests
    meeting both SLOs), requests/s and generated tokens/s; TPOT = (last token - first token)
    / (gen_len - 1), none for a one-token answer."""
    ttft = first_s - req.arrival_s
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(req.gen_len > 1, (finish_s - first_s) / (req.gen_len - 1), np.nan)
    has_tpot = ~np.isnan(tpot)
    meets = (ttft <= ttft_slo_s) & (np.isnan(tpot) | (tpot <= tpot_slo_s))
    span_s = np.max(finish_s[np.isfinite(finish_s)], initial=0.0) - req.arrival_s[0]
    served = np.isfinite(finish_s)
    return dict(
        ttft_p50_s=_quantile(ttft, 0.50), ttft_p99_s=_quantile(ttft, 0.99),
        tpot_p50_s=_quantile(tpot[has_tpot], 0.50), tpot_p99_s=_quantile(tpot[has_tpot], 0.99),
        goodput_per_s=rate_per_s * float(np.mean(meets)),
        requests_per_s=float(np.sum(served) / span_s) if span_s > 0 else np.nan,
        throughput_per_s=float(np.sum(req.gen_len[served]) / span_s) if span_s > 0 else np.nan,
        n_requests=len(ttft),
    )


def _quantile(x: np.ndarray, q: float) -> float:
    # NOTE: the empirical quantile (no interpolation), so refused requests (inf) count as
    # misses instead of turning an interpolated P99 into NaN.
    return float(np.quantile(x, q, method="inverted_cdf")) if len(x) else np.nan


def max_rate(unit_arrival_s: np.ndarray, prompt_len: np.ndarray, gen_len: np.ndarray,
             steps: StepTimes, engine: Engine, ttft_slo_s: float, tpot_slo_s: float,
             high_per_s: float, rel_tol: float = 0.01) -> float:
    """The highest request rate whose P99 TTFT and P99 TPOT meet their SLOs, requests/s, by
    bisection between 0 and ``high_per_s`` (doubled while it still meets them).

    Every rate replays the same requests with arrival times ``unit_arrival_s`` (those of
    rate 1) divided by the rate (common random numbers), so the answer is deterministic and
    the P99s move with the rate only. 0 where even the lowest rate, high_per_s / 1000, misses.
    """
    def meets(rate: float) -> bool:
        req = Requests(unit_arrival_s / rate, prompt_len, gen_len)
        out = summarize(req, *simulate(req, steps, engine), rate, ttft_slo_s, tpot_slo_s)
        return out["ttft_p99_s"] <= ttft_slo_s and out["tpot_p99_s"] <= tpot_slo_s

    lo, hi = high_per_s * 1e-3, high_per_s
    if not meets(lo):
        return 0.0
    for _ in range(10):
        if not meets(hi):
            break
        lo, hi = hi, 2.0 * hi
    for _ in range(_RATE_STEPS):
        if hi - lo <= rel_tol * lo:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    return lo
