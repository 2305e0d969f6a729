"""The image augmentations and the CNN's evaluation-time options, on real photos."""
import numpy as np
import torch
from PIL import Image

from glassbox.data.augment import ImageAugment
from glassbox.models.cnn import CNN, CNNConfig
from glassbox.models.precision import native_bf16


def photos(cats_dogs_64, n=16, size=32):
    files = sorted((cats_dogs_64 / "test").glob("*.jpg"))[::15][:n]  # cats and dogs both
    arrays = [np.asarray(Image.open(f).convert("RGB").resize((size, size))) for f in files]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255


def test_shift_moves_each_image_by_its_own_offset(cats_dogs_64):
    x = photos(cats_dogs_64)
    out = ImageAugment(flip=False, shift=3)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    offsets = set()
    for a, b in zip(x, out):  # find the shift that explains each output exactly (interior pixels)
        found = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)
                 if torch.equal(b[:, 3:-3, 3:-3], a[:, 3 + dy:29 + dy, 3 + dx:29 + dx])]
        assert found, "an output is not a shifted copy of its input"
        offsets.add(found[0])
    assert len(offsets) > 4  # images in one batch get different shifts


def test_flip_mirrors_about_half_and_blur_keeps_the_mean(cats_dogs_64):
    x = photos(cats_dogs_64, n=64)
    flipped = ImageAugment(flip=True, shift=0)(x, torch.Generator().manual_seed(1))
    mirrored = [torch.equal(f, a.flip(-1)) for f, a in zip(flipped, x)]
    kept = [torch.equal(f, a) for f, a in zip(flipped, x)]
    assert all(m or k for m, k in zip(mirrored, kept)) and 16 < sum(mirrored) < 48
    blurred = ImageAugment(flip=False, shift=0, blur=0.15)(x, torch.Generator().manual_seed(2))
    assert torch.allclose(blurred.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=2e-3)  # blur moves no brightness
    assert (blurred - x).abs().mean() > 1e-3 and (blurred.diff(dim=-1).abs().mean() < x.diff(dim=-1).abs().mean())


def test_flip_tta_makes_eval_mirror_invariant(cats_dogs_64):
    torch.manual_seed(0)
    x = photos(cats_dogs_64, n=8)
    model = CNN(CNNConfig(in_channels=3, n_classes=2, image_size=32, flip_tta=True)).eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.flip(-1)), atol=1e-5)
        model.train()
        assert not torch.allclose(model(x), model(x.flip(-1)), atol=1e-3)  # training sees single images


def test_bf16_logits_are_float32_and_close_to_float32_model(cats_dogs_64):
    torch.manual_seed(0)
    x = photos(cats_dogs_64, n=8)
    fp32 = CNN(CNNConfig(in_channels=3, n_classes=2, image_size=32)).eval()
    low = CNN(CNNConfig(in_channels=3, n_classes=2, image_size=32, bf16=True)).eval()
    low.load_state_dict(fp32.state_dict())
    with torch.no_grad():
        a, b = fp32(x), low(x)
    assert b.dtype == torch.float32
    if native_bf16(torch.device("cpu")):
        assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.1 * a.abs().max().item())
    else:
        assert torch.equal(a, b)  # without native bfloat16 the model runs in float32
