"""Card validation: defaults, clear errors for bad keys and values."""
import pytest
import torch

from madnis_py.card import parse_card
from madnis_py.errors import CardError, InputError
from madnis_py.run import run_device

BASE = {"process": "p p > t t~", "collider": {"beams": ["p", "p"], "sqrt_s": 13000}}


def card(**extra):
    d = dict(BASE)
    d.update(extra)
    return parse_card(d)


def test_defaults():
    c = card()
    assert c.pdf == "NNPDF23_lo_as_0130_qed" and c.alpha_s == "pdf" and c.cuts == {} and c.seed == 1
    assert c.integrator.method == "vegas" and c.collider.hadronic


def test_device_key():
    assert card().device == "cpu"
    assert card(device="CUDA").device == "cuda" and card(device="cuda:1").device == "cuda:1"


def test_missing_cuda_device_is_one_clear_error():
    """A card may name a GPU this machine lacks: one line at run time, not a torch traceback."""
    assert run_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert run_device("cuda").type == "cuda"
        with pytest.raises(InputError, match="CUDA device"):
            run_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(InputError, match="CUDA is not available here"):
            run_device("cuda")


def test_full_card():
    c = card(scale={"renormalization": "HT/2", "factorization": 91.188}, alpha_s=0.118,
             cuts={"ptj": 20, "etaj": 5, "mmllmax": -1}, parameters={"MT": 172.5},
             integrator={"method": "flat", "calls": 20000}, seed=7)
    assert c.scale.renormalization == "HT/2" and c.scale.factorization == 91.188
    assert c.cuts == {"ptj": 20.0, "etaj": 5.0}  # -1 on a max cut means no cut
    assert c.integrator.calls == 20000 and c.seed == 7


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"proces": "x"}, "did you mean 'process'"),
        ({"cuts": {"ptjj": 20}}, "unknown cut 'ptjj'"),
        ({"cuts": {"ptj": 50, "ptjmax": 40}}, "no phase space"),
        ({"scale": "HT/3"}, "unknown scale"),
        ({"integrator": {"method": "vegaz"}}, "did you mean 'vegas'"),
        ({"integrator": {"calls": 10}}, "at least 1000"),
        ({"collider": {"beams": ["p", "q"], "sqrt_s": 13000}}, "unknown beam 'q'"),
        ({"collider": {"beams": ["p", "p"], "sqrt_s": -1}}, "positive"),
        ({"alpha_s": "running"}, "alpha_s"),
        ({"seed": -3}, "seed"),
        ({"device": "gpu"}, "'device' must be 'cpu', 'cuda' or 'cuda:N'"),
        ({"device": "cpu:1"}, "'device' must be"),
        ({"device": True}, "'device' must be"),
    ],
)
def test_bad_cards(extra, message):
    with pytest.raises(CardError, match=message):
        card(**extra)
