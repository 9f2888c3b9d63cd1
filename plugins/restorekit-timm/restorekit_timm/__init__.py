"""restorekit backbones built on timm.

The entry point ``timm_unet`` names :class:`restorekit_timm.unet.TimmUNet`; restorekit imports
that module (and so timm) only when a config uses the name. This file imports nothing.
"""

__version__ = "0.1.0"
