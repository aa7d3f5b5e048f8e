"""The compiled evaluator's inputs and outputs as plain float arrays with named columns.

numba compiles loops over arrays, not over dataclasses, so every table the fused evaluator
(dse.evaluator.fused) reads is a float array whose columns are named here once: per-candidate chip
figures (``C_*``), per-operator constants (``OP_*``, dse.evaluator.roofline), passes (``P_*``),
scenario scalars (``S_*``), tensor x pipeline x data splits (``SPLIT_*``), and the record of
one candidate on one split (``R_*``). The builders turn the model's Python objects into them
once per scenario.

numba caches each compiled function by its own source file; dse.evaluator.kernel_cache keys
the evaluator's kernels on this layout too, so editing it recompiles them.
"""

from __future__ import annotations

import numba
import numpy as np

from dse.evaluator import kernel_cache
from dse.evaluator.dataflow import direct_peers, exchange_s
from dse.evaluator.efficiency import Efficiency
from dse.evaluator.parallel import divisors, splits
from hwspace.compute import COMPUTE_CLASSES
from hwspace.derived import ChipDerived
from hwspace.spec import ChipArrays
from hwspace.tables import EXECUTION_MODELS, LINK_PJ_PER_BIT, link_kind_column
from workloads.ops import Plan
from workloads.precision import parse_dtype, sparse_weight_bits
from workloads.scenario import Scenario

__all__ = ["compiled", "inlined", "BOUNDS", "N_BOUNDS", "REASONS", "BATCH_LIMITS",
           "chip_columns", "peak_flop_per_s", "scenario_vector", "pass_table", "split_table",
           "MAX_BATCH", "KV_BLOCK_TOKENS"]

# Every compiled function: cached on disk; IEEE division (x / 0 = inf, 0 / 0 = NaN) as in the
# numpy model, not ZeroDivisionError; and no reference counting (numba's ``_nrt`` flag).
# NOTE: with counting on, every array handed to a compiled callee costs atomic increments
# and decrements; they took over half the evaluator's time (perf: one hot refcount routine,
# 44 % of samples), and inlining every callee instead took 40 s to compile and kept most of
# them. The price: compiled code here allocates nothing; the Python wrappers pass scratch.
kernel_cache.install()
compiled = numba.njit(cache=True, error_model="numpy", _nrt=False)
# Small helpers called per operator, pass or split: inlined at numba's IR level.
inlined = numba.njit(cache=True, error_model="numpy", _nrt=False, inline="always")

# "host": the serving engine's host time per step (dse.evaluator.engine), not the chip's.
BOUNDS = ("compute", "memory", "sram", "link", "overhead", "host")
N_BOUNDS = len(BOUNDS)
# Why a design cannot serve a scenario; the first failing check wins, in the order area,
# power, links, weights, kv_cache (activations), SLOs. New reasons are appended, so stored
# codes keep their meaning. Training: "weights" when the model state alone does not fit,
# "activations" when what the backward pass keeps does not fit beside it. "power": static
# power alone reaches TDP, no throttling leaves room for any work.
REASONS = ("", "area", "links", "weights", "kv_cache", "tpot_slo", "ttft_slo", "activations",
           "power")
(FITS, REASON_AREA, REASON_LINKS, REASON_WEIGHTS, REASON_KV_CACHE, REASON_TPOT_SLO,
 REASON_TTFT_SLO, REASON_ACTIVATIONS, REASON_POWER) = range(len(REASONS))
# What set the served batch: nothing (the batch asked, or the largest the model tries), the
# KV cache (memory), the scheduler's max_num_seqs, an SLO, SRAM (a smaller batch that keeps
# the weights resident is faster), or static batching (one sequence per replica of a
# generate beats continuous batching's mixed steps).
BATCH_LIMITS = ("", "kv_cache", "max_num_seqs", "tpot_slo", "ttft_slo", "sram", "static_batch")
(LIMIT_NONE, LIMIT_KV_CACHE, LIMIT_MAX_NUM_SEQS, LIMIT_TPOT_SLO, LIMIT_TTFT_SLO, LIMIT_SRAM,
 LIMIT_STATIC) = range(len(BATCH_LIMITS))
# Training systems try every smaller size up to this many chips, and every divisor beyond
# (split_table): small systems are where a tester compares 3 with 4 chips; every size up to
# 1,024 would cost ~10x the splits.
IDLE_SIZES_UP_TO = 16
MAX_BATCH = float(1 << 20)  # a batch "as large as memory allows" stops here
# vLLM's default KV block: 16 tokens (Kwon et al., SOSP 2023, section 7.2: "block size 16";
# vllm engine args block_size default 16). Waste is at most one block per sequence.
KV_BLOCK_TOKENS = 16

# Chip columns, (N_CHIP, n_cand): what the model reads of each candidate at the scenario's
# precision (math at the activations' dtype class where the chip lists it, else bf16).
(C_INV_PEAK,  # 1 / (peak FLOP/s * compute_max)
 C_INV_VECTOR,  # matrix peak / vector-unit FLOP/s
 C_INV_SPARSE,  # FLOP multiplier of sparse-eligible ops (1: dense)
 C_WEIGHT_BYTES,  # per weight of a sparse-eligible op (2:4 where supported)
 C_INV_MEM,  # s per off-chip byte of weights and activations (0: no memory)
 C_INV_KV_MEM,  # s per off-chip byte of the paged KV cache
 C_INV_SRAM,  # s per on-chip byte
 C_INV_LINK,  # s per byte of a collective over all links (inf: no links)
 C_LINK_LAT,  # s per hop
 C_CALL_LAT,  # s per collective call (dataflow chips: the schedule's exchange barrier)
 C_OP_OVERHEAD,  # s per operator instance (0 on dataflow chips)
 C_HAS_MEM,
 C_FLOP_PJ,
 C_MEM_PJ,  # per byte
 C_SRAM_PJ,  # per byte
 C_STATIC_W,
 C_TDP_W,
 C_CAPACITY,  # usable memory + SRAM, bytes
 C_SRAM_USABLE,  # bytes
 C_HAS_LINKS,
 C_AREA_OK,
 C_UNITS,  # compute units that tile a matrix product (dataflow chips do not tile)
 C_DATAFLOW,  # 1: a compiled static schedule (hwspace.tables.EXECUTION_MODELS)
 C_DIRECT_PEERS,  # chips reached in one hop by a compiled exchange (0: collectives use rings)
 C_HOST,  # 1: waits for the serving engine's host time per step; 0: dataflow chips
 N_CHIP) = range(26)

# Scenario scalars, (N_SC,).
(S_W_DENSE,  # bytes per weight of ops 2:4 sparsity does not apply to
 S_ACT_BYTES,
 S_EXPERTS, S_TOP_K,  # MoE layers (0: dense)
 S_LINK_PJ,  # per bit
 S_DEQUANT,  # vector FLOP per weight to unpack weight-only formats (0: none)
 S_PARAM_ELEMS,
 S_KV_SEQ_BYTES,  # KV cache of one sequence at its peak, whole blocks, all layers
 S_N_KV_HEADS,
 S_ACT_PEAK_BYTES,  # live activations per item of the widest pass
 S_ITEMS,  # outputs of one request
 S_BATCH,  # the system batch asked; 0: "max"
 S_MAX_SEQS,  # scheduler cap per replica (inf: none)
 S_TPOT_SLO, S_TTFT_SLO,  # seconds (inf: none)
 S_SLO_PASS,  # the pass held to an SLO by the batch search (-1: none)
 S_SLO,  # its SLO, seconds
 S_SLO_WEIGHT,  # steps of that pass per generated token (1; 1 / tokens per step speculating)
 S_DRAFT_PASS,  # the draft decode pass of speculative decoding (-1: none)
 S_DRAFT_WEIGHT,  # draft steps per generated token
 S_PREFILL_PASS,  # -1: none
 S_HAS_MIXED,  # a continuously batched generate
 S_GENERATE,
 S_HOST_BYTES,  # per chip: host memory the KV cache may spill to (0: no host tier)
 S_INV_HOST,  # s per KV byte read over the host link
 S_SLO_LIMIT,  # the BATCH_LIMITS code of the SLO the batch search holds
 S_STATE_SEQ_BYTES,  # Mamba-2 state of one sequence, all layers: fixed, whatever its length
 S_EXPERT_ELEMS,  # routed-expert weights (target and draft), split over ep chips
 S_HOST_STEP_S,  # the engine's host time per forward step (0: not an LLM engine)
 S_HOST_SEQ_S,  # and per sequence in the step
 S_HOST_OVERLAP,  # 1: host work runs beside the chip's step, only its excess is exposed
 S_COMM_OVERLAP,  # 1: tensor-parallel collectives overlap the products (training frameworks)
 N_SC) = range(33)

# Passes, (n_passes, N_PASS): their operators are rows [start, stop) of the operator table.
P_START, P_STOP, P_REPEATS, P_P2P_ELEMS, P_ROLE, N_PASS = range(6)
# Decode-like roles make up TPOT: the decode or mixed step, or a speculative verification
# with its draft steps.
ROLE_PREFILL, ROLE_DECODE, ROLE_MIXED, ROLE_DRAFT, ROLE_OTHER = range(5)
_ROLES = {"prefill": ROLE_PREFILL, "decode": ROLE_DECODE, "verify": ROLE_DECODE,
          "mixed": ROLE_MIXED, "draft": ROLE_DRAFT}

# Splits, (n_splits, N_SPLIT) int: tp x pp x dp x ep and the operator table of that (tp, ep).
# dp counts replicas of ep x tp x pp chips; each holds ep groups of tp x pp chips that run
# their own sequences (dse.evaluator.roofline.expert_parallel).
SPLIT_TP, SPLIT_PP, SPLIT_DP, SPLIT_TP_INDEX, SPLIT_EP, N_SPLIT = range(6)

# One candidate on one split, (N_REC,); the evaluator returns (N_REC, n_cand).
(R_REASON,  # code into dse.evaluator.model.REASONS
 R_THROUGHPUT,  # items per second of the system
 R_OVERFILL,  # capacity needed / capacity: ranks infeasible splits by how near they fit
 R_LATENCY, R_TTFT, R_TPOT,
 R_ENERGY,  # per chip over the latency, dynamic and static, J
 R_FLOP, R_MEM,  # executed per chip; off-chip bytes per chip
 R_RESIDENT,  # weights stay in SRAM
 R_BATCH,  # of the system
 R_REPLICA_BATCH,
 R_MAX_BATCH,
 R_TP, R_PP, R_DP,
 R_SPLIT,  # row of the split table
 R_PENDING,  # 1: cannot run (reason 1-4); the passes are timed only if this split wins
 R_BOUND,  # the bound with the largest time share (index into BOUNDS), of the winner
 R_BATCH_LIMIT,  # what set the served batch (index into BATCH_LIMITS)
 R_SHARES) = range(21)  # then N_BOUNDS columns: time attributed to each bound
R_EP = R_SHARES + N_BOUNDS  # expert-parallel degree
N_REC = R_EP + 1


def _compute_class(sc: Scenario) -> int:
    """Math runs at the activations' dtype class (where the chip lists it, else at bf16)."""
    return COMPUTE_CLASSES.index(parse_dtype(sc.activations, "activations").compute)


def peak_flop_per_s(der: ChipDerived, sc: Scenario) -> np.ndarray:
    """Peak FLOP/s at the scenario's compute class, (n_cand,)."""
    return der.peak_flop_per_s_cls[:, _compute_class(sc)]


def chip_columns(chips: ChipArrays, der: ChipDerived, sc: Scenario,
                 eff: Efficiency) -> np.ndarray:
    """The C_* columns of every candidate, (N_CHIP, n_cand)."""
    w = parse_dtype(sc.weights, "weights")
    cls = _compute_class(sc)
    sparse = (sc.sparsity == "2:4") & (chips.sparsity_speedup > 1.0)
    dataflow = chips.execution_idx == EXECUTION_MODELS.index("dataflow")
    launched = chips.execution_idx == EXECUTION_MODELS.index("kernels")
    collective_bw = (der.link_bw_bytes_per_s
                     * link_kind_column("bw_efficiency")[chips.link_kind_idx])
    has_memory = der.mem_capacity_bytes > 0
    with np.errstate(divide="ignore"):
        inv_mem = np.where(has_memory, 1.0 / (chips.mem_bw_bytes_per_s * eff.memory), 0.0)
        inv_link = 1.0 / collective_bw
    cols = np.empty((N_CHIP, chips.n))
    cols[C_INV_PEAK] = 1.0 / (peak_flop_per_s(der, sc) * eff.compute_max)
    cols[C_INV_VECTOR] = 1.0 / chips.vector_ratio
    cols[C_INV_SPARSE] = np.where(sparse, 1.0 / chips.sparsity_speedup, 1.0)
    cols[C_WEIGHT_BYTES] = np.where(sparse, sparse_weight_bits(w.bits), w.bits) / 8.0
    cols[C_INV_MEM] = inv_mem
    cols[C_INV_KV_MEM] = inv_mem * (eff.memory / eff.kv_memory)
    cols[C_INV_SRAM] = 1.0 / der.sram_bw_bytes_per_s
    cols[C_INV_LINK] = inv_link
    cols[C_LINK_LAT] = chips.link_latency_s
    # A compiled schedule calls no collective library; its exchanges are barriers of the
    # schedule instead (dse.evaluator.dataflow).
    cols[C_CALL_LAT] = exchange_s(dataflow,
                                  link_kind_column("call_latency_s")[chips.link_kind_idx])
    cols[C_OP_OVERHEAD] = np.where(launched, eff.op_overhead_s, 0.0)
    cols[C_HAS_MEM] = has_memory
    # A FLOP costs its datapath energy over the share of peak kernels reach: the cycles the
    # units stall or run padded tiles still switch them. So a compute-bound kernel draws its
    # class's full-rate power, as GEMMs do at TDP: A100 SXM's bf16 GEMMs run at 259 TFLOP/s
    # and H100 SXM's at 731 within 400 and 700 W (data/operators/aiconfigurator_gemm.csv);
    # at their nodes' 0.67 and 0.47 pJ that is 0.67 / 0.666 * 259 = 261 W and 516 W of compute.
    cols[C_FLOP_PJ] = np.where(chips.dtype_speedup[:, cls] > 0, der.flop_pj_cls[:, cls],
                               der.flop_pj_cls[:, 0]) / eff.compute_max
    cols[C_MEM_PJ] = der.mem_pj_per_byte
    cols[C_SRAM_PJ] = der.sram_pj_per_byte
    cols[C_STATIC_W] = der.static_w
    cols[C_TDP_W] = der.tdp_w
    cols[C_CAPACITY] = der.capacity_bytes * eff.usable_memory
    cols[C_SRAM_USABLE] = chips.sram_bytes * eff.usable_memory
    cols[C_HAS_LINKS] = collective_bw > 0
    cols[C_AREA_OK] = der.area_ok
    cols[C_UNITS] = chips.compute_units
    cols[C_DATAFLOW] = dataflow
    cols[C_DIRECT_PEERS] = direct_peers(dataflow, chips.link_count)
    # Dataflow chips run a compiled schedule: no serving engine's host time (engine.py).
    cols[C_HOST] = ~dataflow
    return cols


def _slo_pass(plan: Plan, tpot_slo: float | None,
              ttft_slo: float | None) -> tuple[int, float, int]:
    """The pass whose time grows with the batch and is held to an SLO, with that SLO: the
    decode step (TPOT; the mixed step of a continuously batched generate, the verification
    of a speculating one), or the prefill of a ``prefill`` scenario (TTFT). A generate TTFT
    is one prompt's prefill, whatever the batch. (-1, inf) where the batch search has
    nothing to hold. Third: the BATCH_LIMITS code of that SLO."""
    names = [p.name for p in plan.passes]
    steps = [n for n in ("mixed", "decode", "verify") if n in names]
    if tpot_slo is not None and steps:
        return names.index(steps[0]), tpot_slo, LIMIT_TPOT_SLO
    if ttft_slo is not None and plan.phase == "prefill":
        return names.index("prefill"), ttft_slo, LIMIT_TTFT_SLO
    return -1, np.inf, LIMIT_NONE


def scenario_vector(plan: Plan, sc: Scenario, sys, eff: Efficiency) -> np.ndarray:
    """The S_* scalars of a scenario on a system (dse.evaluator.model.System), (N_SC,)."""
    w, a, kv = (parse_dtype(x, f) for x, f in ((sc.weights, "weights"),
                (sc.activations, "activations"), (sc.kv_cache, "kv_cache")))
    # Weights stored narrower than the math they feed (int4 under bf16) are unpacked first.
    weight_only = w.bits < a.bits and w.compute != a.compute
    # A paged KV cache holds whole blocks: a sequence's last block is partly empty.
    kv_tokens = np.ceil(plan.kv_tokens / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
    names = [p.name for p in plan.passes]
    slo_pass, slo, slo_limit = _slo_pass(plan, sys.tpot_slo_s, sys.ttft_slo_s)
    v = np.empty(N_SC)
    v[S_W_DENSE] = w.bits / 8.0
    v[S_ACT_BYTES] = a.bits / 8.0
    v[S_EXPERTS], v[S_TOP_K] = plan.moe_experts, plan.moe_top_k
    v[S_LINK_PJ] = LINK_PJ_PER_BIT
    v[S_DEQUANT] = eff.dequant_flop_per_weight if weight_only else 0.0
    v[S_PARAM_ELEMS] = plan.param_elems
    v[S_KV_SEQ_BYTES] = plan.kv_elems_per_token * kv_tokens * (kv.bits / 8.0)
    v[S_STATE_SEQ_BYTES] = plan.state_bytes_per_seq
    v[S_N_KV_HEADS] = plan.n_kv_heads
    v[S_ACT_PEAK_BYTES] = max(p.act_peak_elems for p in plan.passes) * (a.bits / 8.0)
    v[S_ITEMS] = plan.items_per_request
    v[S_BATCH] = 0.0 if sc.batch == "max" else float(sc.batch)
    v[S_MAX_SEQS] = np.inf if sys.max_num_seqs is None else float(sys.max_num_seqs)
    v[S_TPOT_SLO] = np.inf if sys.tpot_slo_s is None else sys.tpot_slo_s
    v[S_TTFT_SLO] = np.inf if sys.ttft_slo_s is None else sys.ttft_slo_s
    v[S_SLO_PASS], v[S_SLO] = slo_pass, slo
    v[S_SLO_LIMIT] = slo_limit
    # TPOT of speculative decoding: (verify step + spec_tokens draft steps) per step's tokens.
    v[S_SLO_WEIGHT], v[S_DRAFT_PASS], v[S_DRAFT_WEIGHT] = 1.0, -1, 0.0
    if "draft" in names and slo_pass >= 0 and names[slo_pass] == "verify":
        per_token = 1.0 / plan.items_per_request
        v[S_SLO_WEIGHT] = plan.passes[slo_pass].repeats * per_token
        v[S_DRAFT_PASS] = names.index("draft")
        v[S_DRAFT_WEIGHT] = plan.passes[names.index("draft")].repeats * per_token
    v[S_PREFILL_PASS] = names.index("prefill") if "prefill" in names else -1
    v[S_HAS_MIXED] = "mixed" in names
    v[S_GENERATE] = plan.phase == "generate"
    # KV offload (FlexGen, Sheng et al., ICML 2023): the blocks that do not fit on the device
    # live in host memory and attention reads them over the host link, paged as on the
    # device (achieved share: kv_memory).
    v[S_HOST_BYTES] = sys.kv_host_gb * 1e9
    v[S_INV_HOST] = 1.0 / (sys.host_gb_s * 1e9 * eff.kv_memory)
    v[S_EXPERT_ELEMS] = _expert_elems(plan)
    # Training frameworks split each tensor-parallel collective and overlap it with the GEMMs
    # around it (Megatron-LM --tp-comm-overlap, Transformer Engine userbuffers; Wang et al.,
    # ASPLOS 2023); inference engines call it after the GEMM that produces the partial sums.
    v[S_COMM_OVERLAP] = float(plan.phase == "train")
    # The serving engine's host time per step (dse.evaluator.engine): LLMs only; encoders
    # and CNNs run under harnesses the engines do not describe.
    llm = plan.family == "llm"
    v[S_HOST_STEP_S] = sys.step_overhead_s if llm else 0.0
    v[S_HOST_SEQ_S] = sys.seq_overhead_s if llm else 0.0
    v[S_HOST_OVERLAP] = float(sys.overlapped)
    return v


def _expert_elems(plan: Plan) -> float:
    """Routed-expert weight elements of the models a plan runs: the target's (its first
    pass) and a speculative draft's."""
    passes = [plan.passes[0], *(p for p in plan.passes if p.name == "draft")]
    return float(sum(np.sum(p.ops.weight_elems * p.ops.count * p.ops.moe) for p in passes))


def pass_table(plan: Plan) -> np.ndarray:
    """The P_* row of every pass, (n_passes, N_PASS)."""
    table = np.empty((len(plan.passes), N_PASS))
    start = 0
    for row, p in zip(table, plan.passes, strict=True):
        row[P_START], row[P_STOP] = start, start + p.ops.n_ops
        row[P_REPEATS], row[P_P2P_ELEMS] = p.repeats, p.p2p_elems
        row[P_ROLE] = _ROLES.get(p.name, ROLE_OTHER)
        start += p.ops.n_ops
    return table


def split_table(n_sys: np.ndarray, plan: Plan, tp_pin: int | None,
                pp_pin: int | None = None, max_dp: float | None = None,
                ep_pin: int | None = None):
    """Every tp x pp x dp x ep split of each distinct system size.

    Args:
        n_sys: chips per system of each candidate, (n_cand,) whole numbers >= 1.
        plan: bounds tp by the attention heads, pp by the layers and ep by the experts.
        tp_pin, pp_pin, ep_pin: keep only this tensor-, pipeline- or expert-parallel degree
            (None: all).
        max_dp: None: splits of all the system's chips. Else (training, where a replica
            without a sequence is idle, not faster) splits with dp <= max_dp of every
            divisor of the system size and of every size up to IDLE_SIZES_UP_TO, the other
            chips idle: a system then has every split of the smaller systems and of those it
            is a multiple of, so it is never slower than they are.

    Returns:
        (splits (n_splits, N_SPLIT) int, group_start (n_groups + 1,): the splits of group g
        are rows [group_start[g], group_start[g + 1]), group of each candidate (n_cand,),
        distinct (tp, ep) pairs (the operator table of SPLIT_TP_INDEX k is built for
        tables[k])). Training (``max_dp`` set) runs without expert parallelism.
    """
    experts = _expert_degrees_of(plan, ep_pin, training=max_dp is not None)
    sizes, group = np.unique(n_sys, return_inverse=True)
    rows, starts = [], [0]
    for c in sizes:
        used = [int(c)] if max_dp is None else sorted(
            set(divisors(int(c))) | set(range(1, min(int(c), IDLE_SIZES_UP_TO) + 1)))
        # Sorted: the splits of one (tp, pp) follow each other, most replicas first, so
        # training times each pair's microbatch once and meets its fastest splits early
        # (dse.evaluator.training skips splits that cannot beat the best so far).
        found = sorted((s for u in used
                        for s in splits(u, plan.n_heads, plan.n_layers, experts)
                        if (tp_pin is None or s[0] == tp_pin)
                        and (pp_pin is None or s[1] == pp_pin)
                        and (ep_pin is None or s[3] == ep_pin)
                        and (max_dp is None or s[2] <= max_dp)),
                       key=lambda s: (s[0], s[1], -s[2]))
        if not found:
            raise ValueError(f"tp = {tp_pin}, pp = {pp_pin}, ep = {ep_pin}: no split of "
                             f"{int(c)} chips with tp <= {plan.n_heads} heads, pp <= "
                             f"{plan.n_layers} layers and ep dividing {max(experts, 1)} experts")
        rows += found
        starts.append(len(rows))
    tables = sorted({(tp, ep) for tp, _, _, ep in rows})
    table = np.array([(tp, pp, dp, tables.index((tp, ep)), ep) for tp, pp, dp, ep in rows],
                     dtype=np.int64)
    return table, np.array(starts, dtype=np.int64), group.astype(np.int64), tables


def _expert_degrees_of(plan: Plan, ep_pin: int | None, training: bool) -> int:
    """The routed experts per layer the expert-parallel degrees divide (0: ep = 1 only);
    ValueError where a pinned ep cannot apply."""
    experts = 0 if training else plan.moe_experts
    if ep_pin is not None and ep_pin > 1 and (not experts or experts % ep_pin):
        allowed = ("1 (training runs without expert parallelism)" if training and
                   plan.moe_experts else f"a divisor of its {experts} routed experts"
                   if experts else "1 (a dense model)")
        raise ValueError(f"system.ep = {ep_pin}: workload {plan.workload} allows {allowed}")
    return experts
