"""Encoders: one registry for every model of the papers, toy stand-ins, embedding cache."""

from .base import MODELS, ModelEntry, Preprocess, describe_models, list_models, register_model

__all__ = ["MODELS", "ModelEntry", "Preprocess", "describe_models", "list_models", "register_model"]
