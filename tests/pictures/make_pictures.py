"""The odd picture files of tests/lessons/images.rs, written by Pillow (the reference decoder of
torchvision's ImageFolder), with the RGB values Pillow decodes them to, for the test to compare.

Run from the project root:  python3 tests/pictures/make_pictures.py   (needs Pillow and numpy)
"""
import json, os

import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
w, h = 16, 12
rgb = np.zeros((h, w, 3), np.uint8)
rgb[..., 0] = np.arange(w)[None, :] * 15
rgb[..., 1] = np.arange(h)[:, None] * 20
rgb[..., 2] = 90
base = Image.fromarray(rgb)

files = {
    # A palette PNG of 16 colours.
    "palette.png": base.quantize(16),
    # A PNG in grey with alpha.
    "grey-alpha.png": base.convert("LA"),
    # A progressive JPEG.
    "progressive.jpg": base,
    # A CMYK JPEG (as print shops and some cameras write; Adobe's inverted form).
    "cmyk.jpg": base.convert("CMYK"),
    # A grey JPEG.
    "grey.jpg": base.convert("L"),
}
decoded = {}
for name, img in files.items():
    path = os.path.join(here, name)
    if name == "progressive.jpg":
        img.save(path, quality=95, progressive=True)
    elif name.endswith(".jpg"):
        img.save(path, quality=95)
    else:
        img.save(path)
    decoded[name] = np.asarray(Image.open(path).convert("RGB")).reshape(-1).tolist()
with open(os.path.join(here, "decoded.json"), "w") as f:
    json.dump({"width": w, "height": h, "rgb": decoded}, f)
