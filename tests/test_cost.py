"""FLOP counts against analytic counts, the matmul peak and its cache, and the ledger's arithmetic."""
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from glassbox.evaluate import cost
from glassbox.evaluate import peak as matmul_peak
from glassbox.report.words import cost as cost_words


def test_linear_forward_and_train_step_flops_are_exact():
    m, k, n = 8, 16, 32
    lin = nn.Linear(k, n)                     # the bias add is elementwise: not counted
    x, y = torch.randn(m, k), torch.randn(m, n)
    assert cost.count_inference_flops(lin, x[:1]) == 2 * 1 * k * n
    # Forward 2mkn; backward: weight gradient 2mkn, and no input gradient, since x does not
    # require one: 4mkn, not the textbook 6mkn.
    assert cost.count_train_step_flops(lin, x, y, F.mse_loss) == 4 * m * k * n
    # When the input does need a gradient (any layer but the first), backward is twice forward: 6mkn.
    assert cost.count_train_step_flops(lin, x.requires_grad_(True), y, F.mse_loss) == 6 * m * k * n


def test_mlp_train_step_flops_are_exact():
    m, k, h, n = 16, 20, 64, 10
    mlp = nn.Sequential(nn.Linear(k, h), nn.ReLU(), nn.Linear(h, n))
    x, y = torch.randn(m, k), torch.randint(0, n, (m,))
    # layer 1: forward 2mkh + weight grad 2mkh; layer 2: forward 2mhn + weight grad 2mhn + input grad 2mhn.
    assert cost.count_train_step_flops(mlp, x, y, F.cross_entropy) == 4 * m * k * h + 6 * m * h * n
    assert cost.count_inference_flops(mlp, x[:1]) == 2 * (k * h + h * n)


class TinyGPT(nn.Module):
    """GPT-style decoder: token + position embeddings, pre-norm blocks, causal SDPA, untied head."""

    def __init__(self, vocab=64, block=16, n_layer=2, n_head=2, d=32):
        super().__init__()
        self.n_head = n_head
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(block, d)
        self.blocks = nn.ModuleList(nn.ModuleDict({
            "ln1": nn.LayerNorm(d), "qkv": nn.Linear(d, 3 * d, bias=False), "proj": nn.Linear(d, d, bias=False),
            "ln2": nn.LayerNorm(d), "fc": nn.Linear(d, 4 * d, bias=False), "out": nn.Linear(4 * d, d, bias=False),
        }) for _ in range(n_layer))
        self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)

    def forward(self, idx):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))                         # (B, T, d)
        for blk in self.blocks:
            q, k, v = blk["qkv"](blk["ln1"](x)).split(x.shape[-1], dim=2)
            q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))   # (B, nh, T, hs)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, -1)
            x = x + blk["proj"](att)
            x = x + blk["out"](F.gelu(blk["fc"](blk["ln2"](x))))
        return self.head(self.ln_f(x))                                        # (B, T, vocab)


def test_gpt_train_flops_match_the_6n_plus_attention_estimate():
    vocab, T, L, d, B = 64, 16, 2, 32, 3
    model = TinyGPT(vocab, T, L, 2, d)
    idx, targets = torch.randint(0, vocab, (B, T)), torch.randint(0, vocab, (B, T))
    # N: the weights that multiply (blocks 12*d^2 each, plus the head); embeddings are look-ups.
    n_matmul = sum(p.numel() for name, p in model.named_parameters()
                   if p.dim() == 2 and not name.startswith(("wte", "wpe")))
    assert n_matmul == L * 12 * d * d + d * vocab

    def loss_fn(logits, y):
        return F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))

    counted = cost.count_train_step_flops(model, idx, targets, loss_fn)
    tokens = B * T
    nanogpt = tokens * (6 * n_matmul + 12 * L * d * T)   # nanoGPT / PaLM: 6N + 12*L*d*T per token
    # FlopCounterMode's attention backward also counts re-computing the scores Q K^T (as a
    # flash-attention kernel does): 5 matmuls instead of 4, so 14*L*d*T, not 12*L*d*T.
    # Both count the full T x T square, ignoring the causal mask. With that, the count is exact.
    assert counted == tokens * (6 * n_matmul + 14 * L * d * T)
    assert counted / nanogpt == pytest.approx(1.0, abs=0.015)   # here 1.19% above the estimate
    # Inference: one sequence, forward only: 2N + 4*L*d*T per token.
    assert cost.count_inference_flops(model, idx[:1]) == T * (2 * n_matmul + 4 * L * d * T)


def test_cpu_attention_is_counted():
    """torch leaves CPU attention out of FlopCounterMode (0 FLOPs); we count it like the GPU kernels."""
    q = torch.randn(1, 4, 64, 16)
    with cost._counter() as counter:
        F.scaled_dot_product_attention(q, q, q)
    assert counter.get_total_flops() == 4 * 4 * 64 * 64 * 16    # QK^T and AV, 2 FLOPs per multiply-add


def test_transformer_inference_is_counted_despite_the_fused_fast_path():
    """In eval mode nn.TransformerEncoderLayer runs fused kernels that torch's registry counts as 0."""
    from glassbox.models.text_transformer import TextTransformer, TextTransformerConfig

    torch.manual_seed(0)
    model = TextTransformer(TextTransformerConfig(vocab_size=500, n_classes=2, max_len=32))
    ids = torch.randint(1, 500, (1, 20))
    with cost._counter() as counter:          # training mode: the plain, countable path
        model.train()(ids)
    d, layers = model.config.n_embd, model.config.n_layer
    assert counter.get_total_flops() > layers * 2 * 20 * (4 * d * d + 2 * d * 4 * d)
    assert cost.count_inference_flops(model, ids) == counter.get_total_flops()
    assert model.training and torch.backends.mha.get_fastpath_enabled()   # both restored


def test_counting_leaves_the_model_exactly_as_it_was():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.Dropout(0.5), nn.Linear(12, 3)).eval()
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    model[0].weight.grad = torch.full_like(model[0].weight, 7.0)   # a gradient the caller is accumulating
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()

    assert cost.count_train_step_flops(model, x, y, F.cross_entropy) == 4 * 10 * 6 * 12 + 6 * 10 * 12 * 3
    assert not model.training                                      # eval mode restored
    for k, v in model.state_dict().items():                        # weights and BatchNorm stats
        assert torch.equal(v, before[k]), k
    assert torch.equal(model[0].weight.grad, torch.full_like(model[0].weight, 7.0))
    assert model[3].weight.grad is None
    assert torch.equal(torch.get_rng_state(), rng_before)          # dropout drew from a forked RNG

    model.train()
    cost.count_inference_flops(model, x[:1])
    assert model.training                                          # train mode restored


def test_inference_needs_a_batch_of_one():
    with pytest.raises(ValueError, match=r"Pass x\[:1\]"):
        cost.count_inference_flops(nn.Linear(3, 2), torch.randn(4, 3))


def test_optimizer_flops_are_per_trainable_parameter():
    model = nn.Linear(10, 5)       # 55 parameters
    model.bias.requires_grad_(False)
    assert cost.optimizer_step_flops(model) == cost.ADAMW_FLOPS_PER_PARAM * 50 == 700


class FakeMatmulClock:
    """Stands in for matmul_peak._time_matmuls: an n x n product takes 0.2 s * (n / 1024)**3 * factor, and the
    timed repeats (count > 1) are stretched by `jitter` in turn, as other work on a machine stretches them."""

    def __init__(self, factor=1.0, jitter=(1.0,)):
        self.factor, self.jitter, self.calls = factor, list(jitter), []

    def __call__(self, a, b, out, count):
        n = a.shape[0]
        assert a.shape == b.shape == out.shape == (n, n)
        self.calls.append((n, count))
        seconds = count * 0.2 * (n / 1024) ** 3 * self.factor
        if count > 1:
            seconds *= self.jitter[(len([c for c in self.calls if c[1] > 1]) - 1) % len(self.jitter)]
        return seconds


RATE = 2 * 1024**3 / 0.2  # the FLOP/s FakeMatmulClock's products run at with factor 1


def test_matmul_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_CACHE_DIR", str(tmp_path))
    clock = FakeMatmulClock(jitter=(1.3, 1.0, 1.1, 1.2, 1.5))
    monkeypatch.setattr(matmul_peak, "_time_matmuls", clock)
    peak = matmul_peak.measure_matmul_peak()
    # the size doubles from 256 (a warm-up and a timed product each) until one product takes >= 50 ms:
    # 256: 3.1 ms, 512: 25 ms, 1024: 200 ms; then ceil(0.25 s / 0.2 s) = 2 products per repeat, 5 repeats
    assert clock.calls == [(256, 1)] * 2 + [(512, 1)] * 2 + [(1024, 1)] * 2 + [(1024, 2)] * matmul_peak.PEAK_REPEATS
    assert peak == pytest.approx(RATE, rel=1e-12)             # the fastest repeat (jitter 1.0) counts
    (entry,) = json.loads((tmp_path / "matmul_peak.json").read_text()).values()
    assert entry["flops_per_second"] == peak == entry["last_measured_flops_per_second"]
    assert entry["n"] == 1024 and entry["products_per_repeat"] == 2 and entry["repeats"] == matmul_peak.PEAK_REPEATS
    assert entry["fastest_seconds"] == pytest.approx(2 * 0.2 * 1.0, rel=1e-12)
    assert entry["median_seconds"] == pytest.approx(2 * 0.2 * 1.2, rel=1e-12)   # median of the five jitters

    # the next run checks briefly at the cached size: 1 repeat of ceil(0.1 s / 0.2 s) = 1 product, no warm-up
    clock.calls, clock.factor = [], 1.25  # a busier machine now: the check is slower, the higher value stays
    assert matmul_peak.measure_matmul_peak() == peak
    assert clock.calls == [(1024, 1)] * matmul_peak.PEAK_CHECK_REPEATS == [(1024, 1)]
    (entry,) = json.loads((tmp_path / "matmul_peak.json").read_text()).values()
    assert entry["measurements"] == 2 and entry["last_measured_flops_per_second"] == pytest.approx(RATE / 1.25)
    assert entry["n"] == 1024 and entry["products_per_repeat"] == 2   # the full measurement's record is kept
    assert cost_words.peak_how(matmul_peak.peak_record()).startswith("the highest of 2 measurements on this machine since ")


def test_ledger_arithmetic():
    ledger = cost.cost_ledger(train_flops_total=1e12, train_seconds=100.0, inference_flops=1e6,
                              inference_seconds=1e-3, peak_flops=1e11, power_watts=72.0, price_per_kwh=0.5)
    assert ledger["train"]["mfu"] == pytest.approx(0.1)           # 1e10 FLOP/s of 1e11
    assert ledger["inference"]["mfu"] == pytest.approx(0.01)      # 1e9 of 1e11
    assert ledger["train"]["energy_kwh"] == pytest.approx(72.0 * 100 / 3.6e6) == pytest.approx(0.002)
    assert ledger["train"]["cost"] == pytest.approx(0.001)
    assert ledger["inference"]["energy_kwh_per_1000"] == pytest.approx(72.0 * 1.0 / 3.6e6)
    assert ledger["inference"]["cost_per_1000"] == pytest.approx(1e-5)
    assert ledger["training_equals_predictions"] == {"by_flops": pytest.approx(1e6), "by_time": pytest.approx(1e5)}
    said = cost_words.sentence(ledger)
    assert said.startswith(
        "Training cost as much as 1.00 million predictions by FLOPs, or 100,000 by time. "
        "Training used 1.00 TFLOP in 100 s, 10.0% of this machine's measured float32 matmul peak (100 GFLOP/s)")
    assert "training used 0.0020 kWh costing 0.0010" in said
    json.dumps(ledger)
    defaults = cost.cost_ledger(1e12, 100.0, 1e6, 1e-3, 1e11)
    assert (defaults["power_watts"], defaults["price_per_kwh"]) == (65.0, 0.30)
    one = cost.cost_ledger(1e12, 100.0, 1e6, 1e-3, 1e11, peak_threads=1)  # the peak on the threads training used
    assert "float32 matmul peak on 1 thread, as training ran (100 GFLOP/s)" in cost_words.sentence(one)
    assert cost.reprice(one, power_watts=100.0)["peak_threads"] == 1
    how = cost.cost_ledger(1e12, 100.0, 1e6, 1e-3, 1e11, peak_how="the highest of 3 measurements on this machine")
    assert "peak (100 GFLOP/s, the highest of 3 measurements on this machine); one prediction" in cost_words.sentence(how)
    assert cost_words.sentence(cost.reprice(how, power_watts=100.0)).count("the highest of 3 measurements") == 1


def test_ledger_refuses_impossible_inputs():
    with pytest.raises(ValueError, match="'train_seconds' parameter of cost_ledger must be a number in"):
        cost.cost_ledger(1e12, 0.0, 1e6, 1e-3, 1e11)


def test_reprice_works_energy_and_money_out_again_and_keeps_the_rest():
    ledger = cost.cost_ledger(1e12, 100.0, 1e6, 1e-3, 1e11, power_watts=72.0, price_per_kwh=0.5)
    ledger["train"]["steps"] = 500
    again = cost.reprice(ledger, power_watts=144.0, price_per_kwh=0.25)
    assert again["train"]["energy_kwh"] == pytest.approx(2 * ledger["train"]["energy_kwh"])
    assert again["train"]["cost"] == pytest.approx(ledger["train"]["cost"])           # twice the energy, half the price
    assert again["train"]["mfu"] == ledger["train"]["mfu"] and again["train"]["steps"] == 500
    assert "At 144 W and 0.25 per kWh" in cost_words.sentence(again)
    old_words = {**ledger, "sentence": cost_words.sentence(ledger)}  # as summary.json holds it
    assert "sentence" not in cost.reprice(old_words, power_watts=144.0)  # words for the old figures are dropped
    assert cost.reprice(ledger, price_per_kwh=1.0)["power_watts"] == 72.0              # only what is given changes


def test_default_power_and_optimizer_flops():
    assert cost.default_power_watts("cpu", world_size=4) == cost.DEFAULT_POWER_WATTS  # one machine's CPUs
    assert cost.optimizer_flops_per_param("adamw") == 14
    assert cost.optimizer_flops_per_param("sgd") == 6 and cost.optimizer_flops_per_param("sgd", 0.01) == 8
    assert cost.optimizer_flops_per_param("sgd", momentum=0.0) == 2 and cost.optimizer_flops_per_param("sgd", 0.01, 0.0) == 4


def test_a_peak_measured_on_a_busy_machine_does_not_stick(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_CACHE_DIR", str(tmp_path))
    clock = FakeMatmulClock(factor=4.0)  # the first measurement runs while other work holds the cores
    monkeypatch.setattr(matmul_peak, "_time_matmuls", clock)
    busy = matmul_peak.measure_matmul_peak()
    assert busy == pytest.approx(RATE / 4, rel=1e-12)
    path = tmp_path / "matmul_peak.json"
    (key, entry), = json.loads(path.read_text()).items()
    # four times slower, a 512 product already takes 100 ms: the search stops there, 3 products per repeat
    assert (entry["n"], entry["products_per_repeat"]) == (512, 3)

    clock.factor, clock.calls = 1.0, []
    quiet = matmul_peak.measure_matmul_peak()  # the next run, on a quiet machine: its brief check replaces the low value
    assert quiet == pytest.approx(RATE, rel=1e-12) and set(clock.calls) == {(512, 1)}
    entry = json.loads(path.read_text())[key]
    entry["measured_unix"] -= matmul_peak.PEAK_MAX_AGE_SECONDS + 1  # a day later it is measured again in full
    path.write_text(json.dumps({key: entry}))
    clock.calls = []
    assert matmul_peak.measure_matmul_peak() == pytest.approx(RATE, rel=1e-12)
    assert (1024, 2) in clock.calls and json.loads(path.read_text())[key]["n"] == 1024

    clock.factor, clock.calls = 8.0, []
    assert matmul_peak.measure_matmul_peak(refresh=True) == quiet    # a later busy measurement cannot lower it
    assert clock.calls                                        # refresh measured although the cache was fresh
    after = json.loads(path.read_text())[key]
    assert after["flops_per_second"] == quiet
    assert after["last_measured_flops_per_second"] == pytest.approx(RATE / 8, rel=1e-12)


def test_fasttext_bag_sums_are_counted():
    """A bag model's work is adding n-gram vectors: one FLOP per element added, forward and backward."""
    from glassbox.models.fasttext import FastText, FastTextConfig

    model = FastText(FastTextConfig(100, 2, dim=4, word_vocab=10))
    # one text of 3 real ids: 3 x 4 adds into its bags, then the head: 2 x 8 x 2
    assert cost.count_inference_flops(model, torch.tensor([[3, 42, 7, 0]])) == 3 * 4 + 2 * 8 * 2
    x, y = torch.tensor([[3, 42, 7, 0], [55, 0, 0, 0]]), torch.tensor([0, 1])
    forward = 4 * 4 + 2 * 2 * 8 * 2            # 4 real ids in the batch, head on 2 rows
    backward = 2 * (2 * 2 * 8 * 2) + 4 * 4     # head: weight and input gradients; the gather's scatter-add
    assert cost.count_train_step_flops(model, x, y, F.cross_entropy) == forward + backward


def test_the_lm_ledger_counts_its_validation_passes_as_a_classifiers_does(tiny_lm_run):
    s = json.loads((tiny_lm_run / "summary.json").read_text())
    t = s["cost"]["train"]
    evaluations = (tiny_lm_run / "metrics.jsonl").read_text().splitlines()  # the untrained model's pass included
    assert t["eval_flops"] == len(evaluations) * s["curve_val_windows"] * s["cost"]["inference"]["flops"] > 0
    assert t["flops"] == pytest.approx(t["steps"] * t["flops_per_step"] + t["eval_flops"])
