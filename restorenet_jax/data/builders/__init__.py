"""TFDS builders for the paired restoration datasets, by name (an explicit table: no import-side-effect registry)."""
from restorenet_jax.data.builders.bsd_b import BsdB
from restorenet_jax.data.builders.common import LayoutError, PairedImageBuilder
from restorenet_jax.data.builders.embedded import Embedded, embedded_builder_config
from restorenet_jax.data.builders.folder import Folder
from restorenet_jax.data.builders.gopro_large import GoproLarge
from restorenet_jax.data.builders.paired_folder import PairedFolder, PairedNoiseFolder
from restorenet_jax.data.builders.realblur import RealblurJ, RealblurR, RealblurTele
from restorenet_jax.data.builders.sidd import Sidd

BUILDERS: dict[str, type[PairedImageBuilder]] = {
    'embedded': Embedded,
    'gopro_large': GoproLarge,
    'realblur_j': RealblurJ,
    'realblur_r': RealblurR,
    'realblur_tele': RealblurTele,
    'bsd_b': BsdB,
    'sidd': Sidd,
    # Users' own folders, each prepared under a name of their choice (`folder/NAME`, default 'default').
    'folder': Folder,
    'paired_folder': PairedFolder,
    'paired_noise_folder': PairedNoiseFolder,
}


def canonical_name(name: str) -> str:
    """'GoPro_Large', 'RealBlur-J', 'BSD-B' ... -> the BUILDERS key ('gopro_large', 'realblur_j', 'bsd_b')."""
    key = name.strip().lower().replace('-', '_')
    if key not in BUILDERS:
        raise KeyError(f'unknown dataset {name!r}; known: {", ".join(sorted(BUILDERS))}')
    return key


__all__ = ['BUILDERS', 'LayoutError', 'PairedImageBuilder', 'canonical_name', 'embedded_builder_config']
