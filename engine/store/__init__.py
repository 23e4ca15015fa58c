"""The model artifact: layout, save and load, local paths and cloud URIs."""
from engine.store.artifact import Artifact, list_artifacts, load_artifact, read_model_name, save_artifact

__all__ = ["Artifact", "list_artifacts", "load_artifact", "read_model_name", "save_artifact"]
