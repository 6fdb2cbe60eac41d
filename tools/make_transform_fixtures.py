"""Writes the transform fixtures of the image-folder pipeline (issue 21 item 2) with Debian's PIL and torchvision.

Regenerate (seconds):  /usr/bin/python3 tools/make_transform_fixtures.py
Needs: python3-pil, python3-torchvision, python3-skimage (apt). Output: tests/TestData/transforms/ (about 150 KB):

  input.npy                 uint8 (40, 52, 3): a crop of skimage's chelsea photo (non-square on purpose)
  resize_<W>x<H>.npy        PIL Image.resize((W, H), BICUBIC) of input: down, up, mixed, one side only
  eval_<size>_<pct>.npy     torchvision Resize(floor(size / pct), BICUBIC) + CenterCrop(size) of input, uint8
  rrc_<top>_<left>_<h>_<w>_<size>.npy  torchvision F.resized_crop(input, top, left, h, w, size, BICUBIC): the crop
                            box that RandomResizedCrop would draw, fixed here
  hflip.npy                 F.hflip(input)
  normalize.npy             float32 (3, 40, 52): Normalize(ImageNet mean, std)(ToTensor(input))
  erase.npy                 float32 (3, 40, 52): normalize.npy with the box top 5, left 7, h 11, w 13 replaced by
  erase_noise.npy           float32 (3, 11, 13): the per-pixel normal noise written there (timm mode 'pixel')
  op_<Name>_<arg>.npy       uint8: PIL's op on input as timm's RandAugment calls it (fill (124, 116, 104), the
                            ImageNet mean in 8 bits; resample BICUBIC), one per op at fixed arguments:
                            AutoContrast, Equalize, Invert, Rotate (degrees), Posterize (bits kept), Solarize
                            (threshold), SolarizeAdd (add, threshold 128), Color/Contrast/Brightness/Sharpness
                            (enhance factor), ShearX/ShearY (factor), TranslateX/TranslateY (pixels)
"""
import os

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageEnhance, ImageOps
from torchvision.transforms import InterpolationMode

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "TestData", "transforms")
FILL = (124, 116, 104)  # timm: tuple(round(255 * m) for m in IMAGENET_DEFAULT_MEAN)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def save(name, arr):
    np.save(os.path.join(ROOT, name + ".npy"), np.ascontiguousarray(arr))


def u8(img):
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def affine(img, matrix):
    return img.transform(img.size, Image.AFFINE, matrix, resample=Image.BICUBIC, fillcolor=FILL)


def main():
    os.makedirs(ROOT, exist_ok=True)
    src = Image.open("/usr/lib/python3/dist-packages/skimage/data/chelsea.png").convert("RGB")
    img = src.resize((150, 100), Image.BICUBIC).crop((40, 20, 92, 60))  # 52 x 40
    save("input", u8(img))
    for w, h in [(17, 13), (26, 20), (104, 80), (75, 31), (52, 23), (33, 40), (200, 7)]:
        save(f"resize_{w}x{h}", u8(img.resize((w, h), Image.BICUBIC)))
    for size, pct in [(32, 0.875), (24, 0.875), (36, 1.0), (16, 0.9)]:
        scale = int(np.floor(size / pct))
        out = F.center_crop(F.resize(img, scale, InterpolationMode.BICUBIC), size)
        save(f"eval_{size}_{pct}", u8(out))
    for top, left, h, w, size in [(3, 5, 30, 40, 24), (0, 0, 40, 52, 32), (10, 20, 9, 14, 32), (1, 2, 37, 21, 20)]:
        save(f"rrc_{top}_{left}_{h}_{w}_{size}", u8(F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BICUBIC)))
    save("hflip", u8(F.hflip(img)))
    norm = F.normalize(F.to_tensor(img), MEAN, STD)
    save("normalize", norm.numpy().astype(np.float32))
    g = torch.Generator().manual_seed(21)
    noise = torch.empty((3, 11, 13)).normal_(generator=g)
    erased = norm.clone()
    erased[:, 5:16, 7:20] = noise
    save("erase", erased.numpy().astype(np.float32))
    save("erase_noise", noise.numpy().astype(np.float32))

    ops = {
        "AutoContrast_0": ImageOps.autocontrast(img),
        "Equalize_0": ImageOps.equalize(img),
        "Invert_0": ImageOps.invert(img),
        "Rotate_27": img.rotate(27.0, resample=Image.BICUBIC, fillcolor=FILL),
        "Rotate_-13.5": img.rotate(-13.5, resample=Image.BICUBIC, fillcolor=FILL),
        "Posterize_1": ImageOps.posterize(img, 1),
        "Posterize_3": ImageOps.posterize(img, 3),
        "Posterize_0": ImageOps.posterize(img, 0),
        "Solarize_26": ImageOps.solarize(img, 26),
        "Solarize_128": ImageOps.solarize(img, 128),
        "SolarizeAdd_99": img.point([min(255, i + 99) if i < 128 else i for i in range(256)] * 3),
        "Color_0.19": ImageEnhance.Color(img).enhance(0.19),
        "Color_1.81": ImageEnhance.Color(img).enhance(1.81),
        "Contrast_0.19": ImageEnhance.Contrast(img).enhance(0.19),
        "Contrast_1.81": ImageEnhance.Contrast(img).enhance(1.81),
        "Brightness_0.19": ImageEnhance.Brightness(img).enhance(0.19),
        "Brightness_1.81": ImageEnhance.Brightness(img).enhance(1.81),
        "Sharpness_0.19": ImageEnhance.Sharpness(img).enhance(0.19),
        "Sharpness_1.81": ImageEnhance.Sharpness(img).enhance(1.81),
        "ShearX_0.27": affine(img, (1, 0.27, 0, 0, 1, 0)),
        "ShearX_-0.135": affine(img, (1, -0.135, 0, 0, 1, 0)),
        "ShearY_0.27": affine(img, (1, 0, 0, 0.27, 1, 0)),
        "TranslateX_21.06": affine(img, (1, 0, 0.405 * 52, 0, 1, 0)),
        "TranslateX_-7": affine(img, (1, 0, -7, 0, 1, 0)),
        "TranslateY_-16.2": affine(img, (1, 0, 0, 0, 1, -0.405 * 40)),
    }
    for name, out in ops.items():
        save("op_" + name, u8(out))
    print(f"wrote {ROOT}")


if __name__ == "__main__":
    main()
