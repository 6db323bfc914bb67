"""Golden values for src/data/transform.rs, computed with Pillow (PIL).

Run: python3 tests/golden/pil_resample.py
The input image is defined by a formula that the Rust test reproduces:
  pixel(c, y, x) = (x*37 + y*91 + c*53 + ((x*y) % 7) * 11) % 256, for an RGB image 12 (h) x 17 (w).
Outputs are printed channel-major (C, H, W), the layout of tunnelbench's u8 store.
"""
import numpy as np
import PIL
from PIL import Image

H, W = 12, 17
arr = np.zeros((H, W, 3), dtype=np.uint8)
for c in range(3):
    for y in range(H):
        for x in range(W):
            arr[y, x, c] = (x * 37 + y * 91 + c * 53 + ((x * y) % 7) * 11) % 256
img = Image.fromarray(arr, "RGB")


def chw(im):
    a = np.asarray(im)
    if a.ndim == 2:
        a = a[:, :, None]
    return a.transpose(2, 0, 1).reshape(-1).tolist()


print("# Pillow", PIL.__version__)
# 1. Bicubic downsample to 7 (w) x 5 (h): Image.resize((7, 5), Image.BICUBIC)
print("BICUBIC_DOWN_7x5 =", chw(img.resize((7, 5), Image.BICUBIC)))
# 2. Bicubic upsample to 23 (w) x 16 (h)
print("BICUBIC_UP_23x16 =", chw(img.resize((23, 16), Image.BICUBIC)))
# 3. Bilinear downsample of the crop box (left 3, top 2, right 15, bottom 11) to 5 x 4, as
#    torchvision's resized_crop does for PIL images: img.crop(box).resize(size, BILINEAR)
print("BILINEAR_CROP_5x4 =", chw(img.crop((3, 2, 15, 11)).resize((5, 4), Image.BILINEAR)))
# 4. Evaluation transform at res 8: torchvision Resize(int(256/224*8) = 9) keeps the aspect
#    ratio (shorter side 9, longer int(9*17/12) = 12), bicubic; CenterCrop(8) takes
#    top = int(round((9-8)/2)) = 0, left = int(round((12-8)/2)) = 2 (Python rounds half to even).
r = img.resize((12, 9), Image.BICUBIC)
top, left = int(round((9 - 8) / 2.0)), int(round((12 - 8) / 2.0))
print("EVAL_RES8 =", chw(r.crop((left, top, left + 8, top + 8))))
# 5. Grayscale ("L") bicubic downsample of channel 0 to 6 x 9.
g = Image.fromarray(arr[:, :, 0], "L")
print("GRAY_BICUBIC_6x9 =", chw(g.resize((6, 9), Image.BICUBIC)))
