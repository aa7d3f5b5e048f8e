"""KV offload: a host-memory tier for the KV cache, read over the host link. It adds the
capacity the host gives; it pays where decode streams weights (the bytes the host link
adds are small beside them) and not where the KV cache is most of the traffic."""

import math

import pytest

from dse.api import predict
from dse.presets import load_workload
from workloads.llm import kv_elems_per_token

# PCIe 5.0 x16: 64 GB/s per direction (PCI-SIG); GH200 NVLink-C2C: 900 GB/s bidirectional,
# 450 GB/s per direction (NVIDIA GH200 Grace Hopper Superchip datasheet); Grace's LPDDR5X
# holds 480 GB.
PCIE, C2C, HOST_GB = 64.0, 450.0, 480.0
FP8 = dict(weights="fp8", activations="fp8", kv_cache="fp8")
CTX = 8000


def _decode(workload, host_gb=0.0, link=PCIE, **kw):
    return predict("h100", workload, phase="decode", batch="max", context_len=CTX,
                   max_num_seqs=None, kv_host_gb=host_gb, host_gb_s=link, **kw)


def test_host_memory_adds_its_sequences_to_the_batch():
    # Sequences past the device hold host_gb / (KV bytes of one sequence, whole 16-token
    # blocks) more.
    cfg = load_workload("llama3-70b")
    per_seq = kv_elems_per_token(cfg) * math.ceil((CTX + 1) / 16) * 16  # fp8: 1 byte
    device = _decode("llama3-70b", **FP8)["max_batch"]
    both = _decode("llama3-70b", HOST_GB, **FP8)["max_batch"]
    assert both - device == pytest.approx(HOST_GB * 1e9 / per_seq, abs=1.0)


def test_offload_pays_for_weight_bound_decode_over_a_fast_link():
    # Llama 3 70B at fp8 fills an H100 with weights: 3 sequences of 8k tokens fit. Each
    # one more from the host adds 1.3 GB per step over the link, against 70 GB of weights:
    # over NVLink-C2C the larger batch wins; over PCIe the device's own batch stays faster.
    device = _decode("llama3-70b", **FP8)
    c2c = _decode("llama3-70b", HOST_GB, C2C, **FP8)
    pcie = _decode("llama3-70b", HOST_GB, PCIE, **FP8)
    assert c2c["batch"] > 10 * device["batch"]
    assert c2c["throughput_per_s"] > 2 * device["throughput_per_s"]
    assert c2c["tpot_s"] > 10 * device["tpot_s"]  # latency pays for it
    assert pcie["batch"] == device["batch"]
    assert pcie["throughput_per_s"] == device["throughput_per_s"]


def test_offload_does_not_pay_where_the_kv_cache_is_the_traffic():
    # Llama 3 8B at 8k tokens: 56 sequences' KV (58 GB) outweighs the 16 GB of weights, so
    # a sequence read over even a 450 GB/s link costs more than it adds.
    device = _decode("llama3-8b")
    for link in (PCIE, C2C):
        out = _decode("llama3-8b", HOST_GB, link)
        assert out["batch"] == device["batch"] and out["max_batch"] > device["max_batch"]


@pytest.mark.parametrize("field, value", [("kv_host_gb", -1), ("host_gb_s", 0),
                                          ("host_gb_s", "fast")])
def test_bad_host_tier_is_named(field, value):
    with pytest.raises(ValueError, match=field):
        predict("h100", "llama3-8b", phase="decode", **{field: value})
