"""Image data: a folder with one sub-folder per class, a flat folder whose file names carry the
label (`--label-from-name 'cat|dog'`), or MNIST-style IDX files. Decoded with Pillow; images of
another size than the training size are resized."""
from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from glassbox.data.examples import Examples
from glassbox.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def is_image_source(path) -> bool:
    p = Path(path)
    return p.is_dir() and (bool(_idx_files(p)) or any(_image_files(p)))


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())


def _idx_files(folder: Path):
    images = sorted(folder.glob("*images-idx3-ubyte*"))
    labels = sorted(folder.glob("*labels-idx1-ubyte*"))
    return (images[0], labels[0]) if images and labels else None


def decode(path: Path, size: int | None, mode: str | None = None, max_pixels: int | None = None) -> np.ndarray:
    """One image as uint8 (C, H, W), resized to size x size when size is given. With `max_pixels`, an image whose
    header says it holds more is refused (TooLarge) before a pixel is decoded."""
    from PIL import Image, UnidentifiedImageError

    from glassbox.errors import TooLarge

    try:
        with Image.open(path) as im:  # reads the header only
            if max_pixels is not None and im.width * im.height > max_pixels:
                raise TooLarge(f"the image is {im.width:,} x {im.height:,} pixels ({im.width * im.height:,}); the "
                               f"limit is {max_pixels:,} (--max-image-pixels): send it smaller")
            im = im.convert(mode or ("L" if im.mode in ("L", "1", "I;16") else "RGB"))
            if size and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"image not found: {path}; check the path") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image {path} ({e.__class__.__name__}): the file is corrupt or not an image; "
                        f"remove or replace it") from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _labels_for(files: list[Path], root: Path, label_from_name: str | None) -> list[str]:
    if label_from_name:
        try:
            pattern = re.compile(label_from_name)
        except re.error as e:
            raise UserError(f"--label-from-name {label_from_name!r} is not a valid regex ({e})") from None
        labels = []
        for f in files:
            m = pattern.search(f.name)
            if not m:
                raise UserError(f"file name {f.name} does not match --label-from-name {label_from_name!r}; "
                                f"rename it or widen the pattern")
            labels.append(m.group(0))
        return labels
    labels = [f.relative_to(root).parts[0] if len(f.relative_to(root).parts) > 1 else "" for f in files]
    if "" in labels:
        raise UserError(f"{root} holds images directly, not in one sub-folder per class; "
                        f"move them into class folders or give --label-from-name REGEX (e.g. 'cat|dog')")
    return labels


def load_images(path, label_from_name: str | None = None, size: int | None = None,
                classes: list[str] | None = None, mode: str | None = None) -> Examples:
    """Examples (uint8 inputs, N x C x H x W) from an image folder or IDX files."""
    root = Path(path)
    if not root.exists():
        raise UserError(f"image folder not found: {root}; check the path")
    idx = _idx_files(root) if root.is_dir() else None
    if idx:
        arrays, labels_raw, names = _read_idx(*idx)
        if size and arrays.shape[-1] != size:
            arrays = _resize_all(arrays, size)
    else:
        files = _image_files(root) if root.is_dir() else []
        if not files:
            raise UserError(f"no images found in {root}; give a folder of .jpg/.png files")
        labels_raw = _labels_for(files, root, label_from_name)
        if size is None:
            size = _common_size(files[:200])
            if size < 4:
                raise UserError(f"the images in {root} are {size}x{size} pixels: too small to learn from; pass "
                                f"--image-size 8 (or larger) to scale them up")
            if size > 1024:
                raise UserError(f"the images in {root} are {size}x{size} pixels; pass --image-size 256 (or another size "
                                f"up to 1024) to train on smaller copies")
        if mode is None:
            mode = "RGB"
        with ThreadPoolExecutor(max_workers=4) as pool:
            arrays = np.stack(list(pool.map(lambda f: decode(f, size, mode), files, chunksize=256)))
        names = [str(f.relative_to(root)) for f in files]
    classes = classes or sorted(set(labels_raw))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels_raw) - set(index))
    if unknown:
        raise UserError(f"{root} has labels the model was not trained on: {', '.join(unknown[:5])}; "
                        f"known labels: {', '.join(classes)}")
    keys = [hashlib.sha1(a.tobytes()).hexdigest() for a in arrays]
    return Examples(kind="image", inputs=arrays, labels=np.array([index[l] for l in labels_raw], dtype=np.int64),
                    classes=classes, keys=keys, lines=names, source=str(root))


def _common_size(files: list[Path]) -> int:
    from PIL import Image

    sizes = Counter()
    for f in files:
        try:
            with Image.open(f) as im:
                sizes[im.size] += 1
        except Exception:
            continue
    if not sizes:
        raise UserError(f"cannot read any image among {files[0].parent}; the files are corrupt or not images")
    (w, h), _ = sizes.most_common(1)[0]
    return max(w, h)


def _resize_all(arrays: np.ndarray, size: int) -> np.ndarray:
    t = torch.nn.functional.interpolate(torch.from_numpy(arrays).float(), size=(size, size), mode="bilinear",
                                        antialias=True, align_corners=False)
    return t.round().clamp(0, 255).to(torch.uint8).numpy()


def _open(p: Path):
    return gzip.open(p, "rb") if p.suffix == ".gz" else open(p, "rb")


def _read_idx(images: Path, labels: Path):
    """MNIST IDX files: big-endian magic, dimensions, then raw uint8 data."""
    try:
        with _open(images) as f:
            data = f.read()
        magic, n, h, w = np.frombuffer(data[:16], dtype=">i4")
        if magic != 2051:
            raise ValueError
        x = np.frombuffer(data[16:16 + n * h * w], dtype=np.uint8).reshape(n, 1, h, w)
        with _open(labels) as f:
            data = f.read()
        magic, m = np.frombuffer(data[:8], dtype=">i4")
        if magic != 2049 or m != n:
            raise ValueError
        y = np.frombuffer(data[8:8 + m], dtype=np.uint8)
    except (ValueError, OSError, EOFError):
        raise UserError(f"cannot read IDX files {images.name} / {labels.name}: corrupt or not MNIST IDX format") from None
    return x.copy(), [str(v) for v in y], [f"{images.name}[{i}]" for i in range(n)]


class ImageEncoder:
    """uint8 images -> float tensor normalised with the training split's per-channel mean and std."""

    def __init__(self, size=None, channels=None, mean=None, std=None):
        self.size, self.channels, self.mean, self.std = size, channels, mean, std

    def fit(self, ex: Examples) -> "ImageEncoder":
        x = torch.from_numpy(ex.inputs).float() / 255
        self.channels, self.size = int(x.shape[1]), int(x.shape[-1])
        self.mean = x.mean(dim=(0, 2, 3)).tolist()
        self.std = x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        return self

    def encode(self, arrays: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(arrays)).float().div_(255)
        if x.shape[-1] != self.size:
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x - mean) / std

    def parse(self, paths: list[str]) -> np.ndarray:
        mode = "L" if self.channels == 1 else "RGB"
        return np.stack([decode(Path(p), self.size, mode) for p in paths])

    def to_dict(self) -> dict:
        return {"type": "image", "size": self.size, "channels": self.channels, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> "ImageEncoder":
        return cls(d["size"], d["channels"], d["mean"], d["std"])
