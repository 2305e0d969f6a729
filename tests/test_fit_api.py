"""glassbox.fit trains any nn.Module: the loop learns, the overfitting detector fires, the sweet spot is restored."""
import json

import pytest
import torch
import torch.nn as nn
from sklearn.datasets import load_digits

import glassbox
from glassbox.config import TrainConfig
from glassbox.train.loop import evaluate


def digits_tensors():
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16
    return x, torch.tensor(d.target)


def test_early_stop_fires_on_memorisation_and_restores_best_weights(tmp_path):
    x, y = digits_tensors()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    train, val = (x[:40], y[:40]), (x[1000:1400], y[1000:1400])  # 40 examples, 300k weights: it will memorise
    res = glassbox.fit(model, train, val, config={"max_steps": 3000, "batch_size": 20, "lr": 3e-3, "eval_every": 10,
                                                  "patience": 5, "weight_decay": 0.0, "quiet": True}, run_dir=tmp_path)
    assert res.stopped_early and res.steps < 3000
    logged = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    best = min(logged[1:], key=lambda r: r["val_loss"])
    assert res.best_step == best["step"]
    restored_loss, _ = evaluate(res.model, val)
    assert restored_loss == pytest.approx(best["val_loss"], rel=1e-6)  # the weights are the sweet spot's
    assert logged[-1]["val_loss"] > best["val_loss"] and logged[-1]["train_loss"] < best["train_loss"]
    assert "began to memorise" in res.verdict and f"step {res.best_step}" in res.verdict


def test_bring_your_own_model_and_dataset():
    x, y = digits_tensors()
    ds = torch.utils.data.TensorDataset(x[:1400], y[:1400])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    res = glassbox.fit(model, ds, (x[1400:], y[1400:]), config={"epochs": 6, "batch_size": 32, "lr": 1e-2, "quiet": True})
    # init and batch seeds 0-4 reach 0.892-0.907 on the 397 held-out digits; chance is 0.1
    assert res.best_val_accuracy > 0.85
    assert res.chance["uniform_loss"] == pytest.approx(2.302585, abs=1e-5)


def test_custom_loss_and_sgd():
    x, y = digits_tensors()
    torch.manual_seed(0)
    model = nn.Linear(64, 10)
    calls = []

    def loss_fn(logits, target):
        calls.append(1)
        return nn.functional.cross_entropy(logits, target)

    res = glassbox.fit(model, (x[:1400], y[:1400]), (x[1400:], y[1400:]), loss_fn=loss_fn,
                       config={"max_steps": 200, "batch_size": 32, "optimizer": "sgd", "lr": 0.1, "quiet": True, "grad_accum": 2})
    # init and batch seeds 0-4 reach 0.874-0.879; chance is 0.1
    assert len(calls) >= 400 and res.best_val_accuracy > 0.8


def test_plain_sgd_steps_by_minus_lr_times_the_gradient():
    from glassbox.config import TrainConfig
    from glassbox.train.loop import make_optimizer

    x, y = digits_tensors()
    for momentum in (0.0, 0.9):
        torch.manual_seed(0)
        model = nn.Linear(64, 10)
        opt = make_optimizer(model, TrainConfig(optimizer="sgd", lr=0.5, momentum=momentum, weight_decay=0.0))
        assert opt.param_groups[0]["momentum"] == momentum and opt.param_groups[0]["nesterov"] == (momentum > 0)
        before = model.weight.detach().clone()
        nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()
        grad = model.weight.grad.clone()
        opt.step()
        # the first step: plain SGD moves by lr * g; nesterov momentum by lr * (1 + m) * g
        assert torch.allclose(model.weight.detach(), before - 0.5 * (1 + momentum) * grad, atol=1e-6)


def test_training_is_deterministic_on_cpu():
    x, y = digits_tensors()
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = nn.Sequential(nn.Linear(64, 32), nn.Dropout(0.3), nn.Linear(32, 10))
        # the same seed and the same thread count (threads split sums differently): the same weights
        glassbox.fit(model, (x[:800], y[:800]), (x[800:1000], y[800:1000]),
                     config={"max_steps": 60, "seed": 4, "quiet": True, "threads": 1})
        outs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(outs[0], outs[1])


def test_no_early_stop_before_the_model_beats_its_untrained_loss():
    from glassbox.train.early_stopping import EarlyStopping, explain

    stopper = EarlyStopping(patience=2)
    stopper.must_beat = 0.69  # the untrained model's validation loss
    history = [{"step": 0, "val_loss": 0.69, "train_loss": None}]
    for step, val in [(5, 0.73), (10, 2.1), (15, 7.0), (20, 1.0)]:  # an unsettled start: worse than random weights
        stopper.update(step, val, 0.8)
        history.append({"step": step, "val_loss": val, "train_loss": 0.8})
        assert not stopper.should_stop
    assert "never fell below the untrained model's (0.6900" in explain(history, stopper.best_step, False, "max_steps")
    for step, val in [(25, 0.60), (30, 0.62), (35, 0.65)]:  # learns, then memorises
        stopper.update(step, val, 0.5)
    assert stopper.should_stop and stopper.best_step == 25


def test_the_thread_count_is_timed_on_a_copy_and_leaves_the_run_untouched():
    from glassbox.runtime.threads import forward_flops
    from glassbox.train.loop import make_optimizer
    from glassbox.train.thread_choice import choose_threads

    x, y = digits_tensors()
    small = nn.Linear(64, 10)
    assert forward_flops(small, x[:32]) == 2 * 32 * 64 * 10  # the counter sees the real matmul
    model = nn.Sequential(nn.Linear(64, 128), nn.Dropout(0.5), nn.ReLU(), nn.Linear(128, 10))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        rng = torch.get_rng_state()
        choice = choose_threads(model, (x[:50], y[:50]), 64,
                                lambda m: make_optimizer(m, TrainConfig()), None)
        timed = choice["seconds_per_step"]
        assert set(timed) == {1, 2} and all(t > 0 for t in timed.values())
        assert choice["threads"] == min(timed, key=timed.get)  # the faster count, as timed
        assert torch.equal(torch.get_rng_state(), rng)  # dropout in the copy drew nothing from the run's stream
        assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())  # the model itself never moved
        assert torch.get_num_threads() == 2
        given = choose_threads(model, (x, y), 64, None, requested=3)
        assert given["threads"] == 3 and given["seconds_per_step"] is None  # --threads wins, untimed
        res = glassbox.fit(small, (x[:1400], y[:1400]), (x[1400:], y[1400:]),
                           config={"max_steps": 20, "batch_size": 32, "quiet": True, "device": "cpu"})
        assert res.threads == res.thread_choice["threads"] in (1, 2) and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_fit_without_validation_examples_says_so():
    x, y = digits_tensors()
    with pytest.raises(ValueError, match="at least one validation example"):
        glassbox.fit(nn.Linear(64, 10), (x[:100], y[:100]), (x[:0], y[:0]), config={"max_steps": 5, "quiet": True})


def test_evaluations_batch_token_rows_by_tokens_and_thread_as_predictions_do():
    """train/evaluation_plan.py: how many rows an evaluation scores at once and on how many threads. Neither
    changes the figure: the mean loss over the same rows, at any batch and thread count, agrees to float rounding."""
    from glassbox.models.gpt import GPT, GPTConfig
    from glassbox.runtime.threads import cpu_threads, forward_flops, threads_for_flops
    from glassbox.train.evaluation_plan import eval_rows, eval_threads

    windows = torch.randint(0, 65, (256, 64))
    assert eval_rows(12, windows) == 128                  # 8,192 tokens of 64-token windows, not 4 x 12 = 48
    assert eval_rows(12, torch.randint(0, 65, (8, 1024))) == 48    # long sequences keep 4 batches
    assert eval_rows(64, torch.randn(10, 1, 8, 8)) == eval_rows(64, torch.randn(10, 5)) == 256   # numbers: 4 batches
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(65, 64, 2, 4, 64))
    assert eval_threads(gpt, windows, 128, 1, 3, on_gpu=False) == 3      # --threads 3 given: used as given
    expected = threads_for_flops(forward_flops(gpt, windows[:128]))
    assert eval_threads(gpt, windows, 128, 1, None, on_gpu=False) == expected
    assert eval_threads(nn.Linear(4, 2), torch.randn(50, 4), 200, 2, None, on_gpu=False) == 1   # tiny: one thread
    data = (windows, torch.randint(0, 65, (256, 64)))
    with cpu_threads(1):
        one = evaluate(gpt, data, batch_size=48)[0]
    with cpu_threads(torch.get_num_threads()):
        assert evaluate(gpt, data, batch_size=128)[0] == pytest.approx(one, rel=1e-5)


def test_glassbox_train_stays_callable_after_the_loop_is_imported(tmp_path):
    """`glassbox.train` is both the pipeline and the loop's subpackage: importing the loop first (as fit does)
    must not turn `glassbox.train(data)` into "'module' object is not callable". In a fresh process."""
    import subprocess
    import sys

    from tests.conftest import subprocess_env

    code = ("import glassbox, glassbox.train.loop\n"
            "import glassbox.train.loop as loop\n"
            f"s = glassbox.train('digits', max_steps=3, quiet=True, threads=1, out={str(tmp_path / 'run')!r})\n"
            "print(s.summary.task, s.summary.steps, loop.fit is glassbox.train.loop.fit)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(),
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["classify", "3", "True"]
