"""Disaggregated serving: a prefill pool and a decode pool, possibly of different chips, the
prompt's KV cache sent from one to the other over the links (DistServe, Zhong et al., OSDI
2024; Splitwise, Patel et al., ISCA 2024).

A niche of this kind has three scenarios of one request shape: a ``prefill`` (its prompt,
under the TTFT SLO), a ``decode`` (at the mean context, under the TPOT SLO) and the colocated
``generate`` it is compared with. Each pool is sized to the request rate, so a pair's cost
and power per generated token/s are the sums of its pools': generated tokens per $ of the
pair = 1 / (1 / prefill pool's + 1 / decode pool's). That sum rises with each pool's own
figure, so every pair on the pair front is made of one pool's front members: the front is
found among front x front, not all n^2 pairs.

The KV transfer overlaps the next prompts' prefill (both papers send it layer by layer), so it
caps the prefill pool's rate at its links' bandwidth over the KV bytes per prompt rather than
adding to TTFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dse.pipeline.niche import Niche, NicheScenario
from dse.pipeline.pareto import pareto_mask
from hwspace.derived import derive, headline
from hwspace.spec import from_columns
from workloads.precision import parse_dtype

__all__ = ["Roles", "roles_of", "is_disaggregated", "pools", "pair_front", "Comparison",
           "compare"]

_OBJECTIVES = ("tokens_per_usd", "tokens_per_w")


@dataclass(frozen=True)
class Roles:
    prefill: NicheScenario
    decode: NicheScenario
    colocated: NicheScenario

    @property
    def kv_bytes_per_prompt(self) -> float:
        sc, plan = self.prefill.scenario, self.prefill.plan
        return plan.kv_elems_per_token * sc.prompt_len * parse_dtype(sc.kv_cache, "kv").bits / 8


def is_disaggregated(niche: Niche) -> bool:
    return sorted(ns.scenario.phase for ns in niche.scenarios) == ["decode", "generate",
                                                                   "prefill"]


def roles_of(niche: Niche) -> Roles:
    """The niche's prefill, decode and colocated scenarios; ValueError if it has not one of
    each or their request shapes differ."""
    if not is_disaggregated(niche):
        raise ValueError(f"niche.{niche.name}: a disaggregated niche has one prefill, one "
                         "decode and one generate scenario")
    by = {ns.scenario.phase: ns for ns in niche.scenarios}
    roles = Roles(by["prefill"], by["decode"], by["generate"])
    gen = roles.colocated.scenario
    if (roles.prefill.scenario.prompt_len != gen.prompt_len
            or len({ns.workload for ns in (roles.prefill, roles.decode, roles.colocated)}) > 1):
        raise ValueError(f"niche.{niche.name}: prefill, decode and generate must serve the "
                         "same workload and prompt_len")
    return roles


def pools(rows: pd.DataFrame, niche: Niche, params: list[str]) -> pd.DataFrame:
    """Per candidate (index candidate_id): generated tokens per $ and per W it delivers as a
    prefill pool (``prefill_*``), as a decode pool (``decode_*``) and colocated
    (``colocated_*``); NaN where it cannot serve that role within the SLOs."""
    roles = roles_of(niche)
    gen_len = roles.colocated.scenario.gen_len
    first = rows.drop_duplicates("candidate_id").set_index("candidate_id")
    spec = {p: first[p].to_numpy() for p in params if p != "chips"}
    chips = first["chips"].to_numpy(float) if "chips" in first else np.ones(len(first))
    link_bw = derive(from_columns(spec)).link_bw_bytes_per_s * chips
    out = pd.DataFrame(index=first.index)
    # Requests per second of each role, as a system of its ``chips``.
    for role, ns, per_request in (("prefill", roles.prefill, roles.prefill.scenario.prompt_len),
                                  ("decode", roles.decode, gen_len),
                                  ("colocated", roles.colocated, gen_len)):
        part = rows[rows["scenario"] == ns.name].set_index("candidate_id").reindex(out.index)
        ok = part["feasible"].fillna(False).astype(bool).to_numpy()
        rate = part["throughput_per_s"].to_numpy(float) / per_request
        if role == "prefill":
            rate = np.minimum(rate, link_bw / roles.kv_bytes_per_prompt)
        tokens = np.where(ok, rate * gen_len, np.nan)
        out[f"{role}_tokens_per_usd"] = tokens / part["system_cost_usd"].to_numpy(float)
        out[f"{role}_tokens_per_w"] = tokens / part["system_power_w"].to_numpy(float)
    return out.join(first[params])


def _front(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    cols = [f"{prefix}_{o}" for o in _OBJECTIVES]
    # Pools scale with their chips, so sizes of one design tie: the first (smallest) stays.
    ok = frame.dropna(subset=cols).drop_duplicates(subset=cols)
    return ok[pareto_mask(-ok[cols].to_numpy(float))] if len(ok) else ok


def pair_front(table: pd.DataFrame) -> pd.DataFrame:
    """The Pareto front of (prefill pool, decode pool) pairs over generated tokens per $ and
    per W, best tokens per $ first: prefill_id, decode_id and both objectives."""
    pre, dec = _front(table, "prefill"), _front(table, "decode")
    if pre.empty or dec.empty:
        return pd.DataFrame(columns=["prefill_id", "decode_id", *_OBJECTIVES])
    p_id, d_id = (np.asarray(x).ravel() for x in np.meshgrid(pre.index, dec.index))
    pairs = pd.DataFrame({"prefill_id": p_id, "decode_id": d_id})
    for o in _OBJECTIVES:
        pairs[o] = 1.0 / (1.0 / table.loc[p_id, f"prefill_{o}"].to_numpy()
                          + 1.0 / table.loc[d_id, f"decode_{o}"].to_numpy())
    front = pairs[pareto_mask(-pairs[list(_OBJECTIVES)].to_numpy(float))]
    return front.sort_values("tokens_per_usd", ascending=False).reset_index(drop=True)


@dataclass(frozen=True)
class Comparison:
    pairs: pd.DataFrame  # the pair front
    colocated: pd.DataFrame  # the colocated front (candidate_id index, both objectives)
    table: pd.DataFrame  # pools()
    params: list[str]  # the design columns of ``table``

    @property
    def gain(self) -> float:
        """Best pair's tokens per $ over the best colocated candidate's (NaN: none)."""
        if self.pairs.empty or self.colocated.empty:
            return np.nan
        return (self.pairs["tokens_per_usd"].max()
                / self.colocated["colocated_tokens_per_usd"].max())

    def summary(self) -> str:
        if self.pairs.empty or self.colocated.empty:
            return "no candidate serves both pools within the SLOs"
        best = self.pairs.iloc[0]
        single = self.colocated["colocated_tokens_per_usd"].idxmax()
        pre, dec = (headline(self.table.loc[[int(best[k])], self.params])
                    for k in ("prefill_id", "decode_id"))
        return (f"best pair: prefill on candidate {int(best['prefill_id'])} "
                f"({pre['bytes_per_flop'][0]:.3g} B/FLOP), decode on candidate "
                f"{int(best['decode_id'])} ({dec['bytes_per_flop'][0]:.3g} B/FLOP): "
                f"{best['tokens_per_usd']:.4g} tokens/s per $ vs "
                f"{self.colocated['colocated_tokens_per_usd'].max():.4g} for the best single "
                f"chip type colocated (candidate {single}): {self.gain:.2f}x")

def compare(rows: pd.DataFrame, niche: Niche, params: list[str]) -> Comparison:
    """Pairs vs one chip type under the same SLOs, from the niche's result rows."""
    table = pools(rows, niche, params)
    return Comparison(pair_front(table), _front(table, "colocated"), table, params)
