"""Writes the committed image-folder test data (issue 21 items 1, 5, 6) with Debian's PIL and python3-skimage.

Regenerate (seconds):  /usr/bin/python3 tools/make_image_folder.py
A larger Fashion-MNIST folder only (not committed; e.g. for the image-folder vs IDX comparison in
bench/results/training.md):  /usr/bin/python3 tools/make_image_folder.py --fmnist OUT TRAIN_PER_CLASS TEST_PER_CLASS
writes OUT/train and OUT/test as below (TEST_PER_CLASS 1000: the whole t10k test set).
Needs: dataset-fashion-mnist, python3-pil, python3-skimage (apt). Output under tests/TestData/images/ (about 1 MB):

  fmnist64/train/<NN_class>/*.png|*.jpg   Fashion-MNIST rendered as 64x64 RGB (PIL bicubic 28->64, grey to RGB),
  fmnist64/test/<NN_class>/*              even files PNG, odd files JPEG (quality 92). TRAIN_PER_CLASS / TEST_PER_CLASS
                                          images per class: the first ones of each class in the IDX train and t10k
                                          files. Folder names "00_t-shirt_top" .. "09_ankle_boot" sort in label order,
                                          so the image folder's class index equals the IDX label. No val/: the
                                          validation part is held out by --val-split.
  decode/<name>.<ext> + decode/<name>.npy real photos from skimage's data folder (small) in every format and pixel
                                          layout the decoder must handle; the .npy is what the C# decoder must produce:
                                          uint8 (H, W, 3), PIL's decode converted to RGB (alpha dropped, as PIL's
                                          convert('RGB') and torchvision's ImageFolder loader do), EXIF orientation
                                          applied (PIL ImageOps.exif_transpose). 16-bit PNG: value * 255 / 65535
                                          rounded (PIL itself clips 16-bit to 8 bits; scaling is what SkiaSharp does
                                          and what a user means).
  decode/orient_<k>.jpg                  one JPEG payload (asymmetric photo crop, 40x24) with EXIF orientation k = 1..8;
                                          decoded pixels of k must equal orientation 1's transformed as EXIF says.
  bad/<file>                             one malformed file per failure the scanner and decoder must name:
      zero_byte.jpg       0 bytes
      truncated.jpg       the first 60 % of a valid baseline JPEG (the decoder reports IncompleteInput)
      truncated.png       the first 60 % of a valid PNG
      corrupt.png         a valid PNG signature and IHDR, then garbage
      not_an_image.jpg    text
      unsupported.tif     a real TIFF (a format we do not read)
      bomb.png            a valid PNG header claiming 100000 x 100000 pixels with a tiny IDAT (the pixel limit
                          must refuse it before decoding)
"""
import gzip
import io
import os
import shutil
import struct
import sys
import zlib

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "TestData", "images")
SKIMAGE = "/usr/lib/python3/dist-packages/skimage/data"
FMNIST = "/usr/share/datasets/fashion-mnist"
CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
TRAIN_PER_CLASS = 24
TEST_PER_CLASS = 8


def read_idx(name):
    with gzip.open(os.path.join(FMNIST, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_fmnist(split, images, labels, per_class, root=os.path.join(ROOT, "fmnist64")):
    for k, name in enumerate(CLASSES):
        folder = os.path.join(root, split, f"{k:02d}_{name}")
        os.makedirs(folder)
        for i, idx in enumerate(np.flatnonzero(labels == k)[:per_class]):
            img = Image.fromarray(images[idx], "L").resize((64, 64), Image.BICUBIC).convert("RGB")
            if i % 2 == 0:
                img.save(os.path.join(folder, f"{split}_{idx:05d}.png"), optimize=True)
            else:
                img.save(os.path.join(folder, f"{split}_{idx:05d}.jpg"), quality=92)


def skimage(name, size=None):
    img = Image.open(os.path.join(SKIMAGE, name))
    img.load()
    if size is not None:
        img = img.resize(size, Image.BICUBIC)
    return img


def save_expected(stem, rgb):
    arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    assert arr.ndim == 3 and arr.shape[2] == 3, arr.shape
    np.save(os.path.join(ROOT, "decode", stem + ".npy"), arr)


def write_decode():
    d = os.path.join(ROOT, "decode")
    os.makedirs(d)

    def pil_rgb(path):
        img = Image.open(path)
        img.seek(0)
        return ImageOps.exif_transpose(img).convert("RGB")

    chelsea = skimage("chelsea.png", (90, 60))
    chelsea.save(os.path.join(d, "rgb.jpg"), quality=90)
    chelsea.convert("CMYK").save(os.path.join(d, "cmyk.jpg"), quality=90)
    camera = skimage("camera.png", (64, 64))
    camera.save(os.path.join(d, "gray.png"))
    camera.save(os.path.join(d, "gray.jpg"), quality=90)
    skimage("horse.png", (60, 50)).save(os.path.join(d, "rgba.png"))
    shutil.copy(os.path.join(SKIMAGE, "palette_color.png"), os.path.join(d, "palette.png"))
    shutil.copy(os.path.join(SKIMAGE, "no_time_for_that_tiny.gif"), os.path.join(d, "animated.gif"))
    coffee = skimage("coffee.png", (72, 48))
    coffee.save(os.path.join(d, "lossless.webp"), lossless=True)
    coffee.save(os.path.join(d, "lossy.webp"), quality=85)
    skimage("astronaut.png", (48, 48)).save(os.path.join(d, "rgb.bmp"))
    skimage("rocket.jpg", (64, 43)).save(os.path.join(d, "rgb.png"))
    for stem in ["rgb.jpg", "cmyk.jpg", "gray.png", "gray.jpg", "rgba.png", "palette.png", "animated.gif",
                 "lossless.webp", "lossy.webp", "rgb.bmp", "rgb.png"]:
        save_expected(stem.replace(".", "_"), pil_rgb(os.path.join(d, stem)))

    # 16-bit grey PNG: a real 16-bit image from skimage, cropped; expected = round(v * 255 / 65535).
    u16 = np.asarray(Image.open(os.path.join(SKIMAGE, "chessboard_GRAY_U16.tif")), dtype=np.uint16)[:40, :56]
    u16 = (u16.astype(np.uint32) * 7 + np.arange(56, dtype=np.uint32)[None, :] * 611) % 65536  # use all 16 bits
    u16 = u16.astype(np.uint16)
    Image.fromarray(u16, "I;16").save(os.path.join(d, "gray16.png"))
    back = np.asarray(Image.open(os.path.join(d, "gray16.png")), dtype=np.uint32)
    assert (back == u16).all(), "PIL did not write the 16-bit PNG losslessly"
    g8 = np.floor(u16.astype(np.float64) * 255.0 / 65535.0 + 0.5).astype(np.uint8)
    save_expected("gray16_png", np.repeat(g8[:, :, None], 3, axis=2))

    # EXIF orientation: one asymmetric payload, eight orientation tags.
    crop = skimage("rocket.jpg").crop((300, 100, 340, 124)).convert("RGB")  # 40 x 24
    for k in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = k
        path = os.path.join(d, f"orient_{k}.jpg")
        crop.save(path, quality=90, exif=exif.tobytes())
        save_expected(f"orient_{k}_jpg", pil_rgb(path))


def png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def write_bad():
    d = os.path.join(ROOT, "bad")
    os.makedirs(d)
    open(os.path.join(d, "zero_byte.jpg"), "wb").close()
    buf = io.BytesIO()
    skimage("chelsea.png", (90, 60)).save(buf, "JPEG", quality=90)
    jpeg = buf.getvalue()
    open(os.path.join(d, "truncated.jpg"), "wb").write(jpeg[: int(len(jpeg) * 0.6)])
    buf = io.BytesIO()
    skimage("coffee.png", (72, 48)).save(buf, "PNG")
    png = buf.getvalue()
    open(os.path.join(d, "truncated.png"), "wb").write(png[: int(len(png) * 0.6)])
    rng = np.random.default_rng(21)
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40, 30, 8, 2, 0, 0, 0))
    garbage = bytes(rng.integers(0, 256, 600, dtype=np.uint8))
    open(os.path.join(d, "corrupt.png"), "wb").write(b"\x89PNG\r\n\x1a\n" + ihdr + garbage)
    open(os.path.join(d, "not_an_image.jpg"), "w").write("This is a text file with an image's name.\n")
    skimage("camera.png", (16, 16)).save(os.path.join(d, "unsupported.tif"))
    side = 100000
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
    open(os.path.join(d, "bomb.png"), "wb").write(b"\x89PNG\r\n\x1a\n" + ihdr + idat + png_chunk(b"IEND", b""))


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    write_fmnist("train", read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz"), TRAIN_PER_CLASS)
    write_fmnist("test", read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz"), TEST_PER_CLASS)
    write_decode()
    write_bad()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote {ROOT} ({total / 1e6:.2f} MB)")


def main_fmnist(out, train_per_class, test_per_class):
    if os.path.exists(out):
        raise SystemExit(f"{out} exists; give a new folder")
    write_fmnist("train", read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz"),
                 train_per_class, out)
    write_fmnist("test", read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz"),
                 test_per_class, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--fmnist":
        main_fmnist(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 1:
        main()
    else:
        raise SystemExit(__doc__)
