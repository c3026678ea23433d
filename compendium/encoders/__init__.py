"""Encoders: one registry for every model of the papers, toy stand-ins, embedding cache.

Light to import (no torch): ``compendium list models`` only needs the entries.
The torch side lives in :mod:`.encoder`, :mod:`.weights`, :mod:`.toy` and :mod:`.cache`.
"""

from .base import (MODELS, ModelEntry, Preprocess, create_model, describe_models, get_entry,
                   list_models, load_encoder, load_entries, register_model, stand_in)

__all__ = ["MODELS", "ModelEntry", "Preprocess", "create_model", "describe_models", "get_entry",
           "list_models", "load_encoder", "load_entries", "register_model",
           "stand_in"]
