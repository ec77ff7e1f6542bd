"""Files: the image extensions every reader accepts.

:data:`IMAGE_EXTS` is the one list of image extensions of the project: ``prepare`` (every reader that lists
images), ``synth mesh`` (photos), ``synth render`` (textures) and ``predict`` (images in a folder) all take it,
so an image one command reads, the others read too.
"""

from __future__ import annotations

#: Image files OpenCV's ``imread`` decodes (in its default build), lower case, with the dot. Anything else in a
#: folder is not an image (``predict`` then tries it as a video: see ``headpose.predict.VIDEO_EXTS``).
IMAGE_EXTS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".jp2", ".pbm", ".pgm",
              ".ppm", ".pnm", ".pxm", ".sr", ".ras", ".exr", ".hdr", ".pic", ".avif")

#: The subset written as given (annotated images); another extension is written as ``.png``.
WRITE_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

