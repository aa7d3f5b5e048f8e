"""Parameter counts and MACs against published figures (relative tolerance 2 %)."""

import pytest

from dse.presets import load_workload
from workloads import cnn, llm

# (preset, total parameters, active per token, source)
LLMS = [
    # 6,738,415,616: huggingface.co/meta-llama/Llama-2-7b-hf (safetensors metadata); Touvron
    # et al. 2023 "Llama 2", Table 1 (7B).
    ("llama2-7b", 6.74e9, None, "Llama 2 paper Table 1; HF model card"),
    # 68,976,648,192: huggingface.co/meta-llama/Llama-2-70b-hf.
    ("llama2-70b", 6.90e10, None, "Llama 2 paper Table 1; HF model card"),
    # 8,030,261,248: huggingface.co/meta-llama/Meta-Llama-3-8B ("8.03B params").
    ("llama3-8b", 8.03e9, None, "HF Meta-Llama-3-8B model card"),
    # 124,439,808: huggingface.co/openai-community/gpt2 ("124M parameters").
    ("gpt2", 1.24e8, None, "Radford et al. 2019; HF gpt2 model card"),
    # 110M: Devlin et al. 2019, section 3 ("BERT-BASE ... Total Parameters=110M").
    ("bert-base", 1.10e8, None, "Devlin et al. 2019 section 3"),
    # 46.7B total, 12.9B active: mistral.ai/news/mixtral-of-experts ("46.7B total
    # parameters but only uses 12.9B parameters per token").
    ("mixtral-8x7b", 4.67e10, 1.29e10, "Mistral AI, Mixtral of experts (Dec 2023)"),
    # 8,100,852,736: huggingface.co/nvidia/Nemotron-H-8B-Base-8K (safetensors metadata, "8.1B
    # params"); arXiv 2504.03624 (Nemotron-H-8B).
    ("nemotron-h-8b", 8.10e9, None, "HF Nemotron-H-8B-Base-8K model card"),
    # 2.7B: the model's name at huggingface.co/state-spaces/mamba2-2.7b, the largest
    # Mamba-2 of Dao & Gu 2024 (arXiv 2405.21060).
    ("mamba2-2.7b", 2.70e9, None, "HF state-spaces/mamba2-2.7b; arXiv 2405.21060"),
    # 671B total, 37B activated per token: DeepSeek-V3 Technical Report (arXiv 2412.19437,
    # abstract and section 4.2), without the multi-token prediction module (the HF
    # checkpoint's 685B include its 14B).
    ("deepseek-v3", 6.71e11, 3.7e10, "DeepSeek-V3 Technical Report, arXiv 2412.19437"),
]


@pytest.mark.parametrize("name, total, active, source", LLMS)
def test_llm_parameter_count(name, total, active, source):
    got_total, got_active = llm.param_count(load_workload(name))
    assert got_total == pytest.approx(total, rel=0.02), source
    if active is not None:
        assert got_active == pytest.approx(active, rel=0.02), source


# (preset, parameters, MACs per 224x224 image, source)
CNNS = [
    # 25,557,032 parameters, 4.09 GMACs: torchvision ResNet50_Weights.IMAGENET1K_V1
    # (num_params, GFLOPS 4.09 where torchvision's "GFLOPS" counts multiply-adds).
    ("resnet50", 2.56e7, 4.1e9, "torchvision resnet50 weights meta"),
    # 3.4M / 300M MAdds: Sandler et al. 2018, Table 4 (1.0 x 224); torchvision 3,504,872.
    ("mobilenetv2", 3.5e6, 3.0e8, "Sandler et al. 2018 Table 4; torchvision"),
    # 138,357,544 parameters, 15.47 GMACs: torchvision VGG16_Weights.IMAGENET1K_V1.
    ("vgg16", 1.38e8, 1.55e10, "Simonyan & Zisserman 2015; torchvision vgg16 meta"),
]


@pytest.mark.parametrize("name, params, macs, source", CNNS)
def test_cnn_parameters_and_macs(name, params, macs, source):
    cfg = load_workload(name)
    assert cnn.param_count(cfg) == pytest.approx(params, rel=0.02), source
    assert cnn.macs(cfg) == pytest.approx(macs, rel=0.02), source


def test_identical_layers_collapse_into_counted_rows():
    plan_ops = cnn.infer_pass(load_workload("resnet50")).ops
    convs, _ = cnn.layer_list(load_workload("resnet50"))
    assert plan_ops.n_ops < len(convs)
    conv_rows = [i for i, n in enumerate(plan_ops.names) if n.startswith("conv")]
    assert sum(plan_ops.count[i] for i in conv_rows) == len(convs)  # the FC is a 1x1 conv
