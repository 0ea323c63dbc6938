"""Image errors: an image that cannot be read is named where it is read.

BasicSR 1.4.2's datasets do ``imfrombytes(file_client.get(path, key))``. ``imfrombytes`` returns None for
bytes OpenCV cannot decode (a corrupt or truncated file), and the dataset fails later on
``'NoneType' object has no attribute 'astype'``; a key missing from an LMDB makes ``FileClient.get`` return
None and ``np.frombuffer`` fail. In the project's pipelines (``replacements()``), ``FileClient.get`` raises
``KeyError`` for a missing LMDB key and returns ``ImageBytes`` that remember their source, and
``imfrombytes`` (in every BasicSR module that imported it) raises ``CorruptImageError`` naming that source.
"""
import sys

import numpy as np


class ImageBytes(bytes):
    """Bytes read by BasicSR's ``FileClient``, with ``source``: the file, or the LMDB and key."""


class CorruptImageError(OSError):
    """Image bytes that OpenCV cannot decode."""


def lmdb_source(client, key, client_key):
    """How an LMDB value is named in errors: ``key '<key>' of LMDB <path>``."""
    clients = list(client._client)
    db_path = client.db_paths[clients.index(client_key)] if client_key in clients else '?'
    return f"key '{key}' of LMDB {db_path}"


def get(original, self, filepath, client_key='default'):
    from basicsr.utils.file_client import LmdbBackend

    value = original(self, filepath, client_key)
    source = str(filepath)
    if isinstance(self.client, LmdbBackend):
        source = lmdb_source(self.client, filepath, client_key)
        if value is None:
            raise KeyError(f'No entry for {source} (is meta_info.txt from another LMDB?)')
    value = ImageBytes(value)
    value.source = source
    return value


def decode_image(content, flag='color'):
    """Decode image bytes as BasicSR does (uint8, BGR), or raise ``CorruptImageError`` naming their source."""
    import cv2

    flags = {'color': cv2.IMREAD_COLOR, 'grayscale': cv2.IMREAD_GRAYSCALE, 'unchanged': cv2.IMREAD_UNCHANGED}
    img = cv2.imdecode(np.frombuffer(content, np.uint8), flags[flag])
    if img is None:
        source = getattr(content, 'source', None) or f'({len(content)} bytes)'
        raise CorruptImageError(f'Cannot decode image {source}: the file is corrupt, truncated or not an image; '
                                'replace it (or rebuild the LMDB)')
    return img


def imfrombytes(content, flag='color', float32=False):
    """BasicSR's ``imfrombytes`` that raises ``CorruptImageError`` instead of returning None."""
    img = decode_image(content, flag)
    return img.astype(np.float32) / 255. if float32 else img


def replacements():
    """``(owner, name, new)`` for ``pipeline.swapped``: ``FileClient.get`` and every ``imfrombytes`` of BasicSR."""
    from basicsr.utils import file_client, img_util

    original_get = file_client.FileClient.get

    def get_with_source(self, filepath, client_key='default'):
        return get(original_get, self, filepath, client_key)

    holders = [module for name, module in list(sys.modules.items())
               if name.split('.')[0] == 'basicsr' and getattr(module, 'imfrombytes', None) is img_util.imfrombytes]
    return [(file_client.FileClient, 'get', get_with_source)] + [(m, 'imfrombytes', imfrombytes) for m in holders]
