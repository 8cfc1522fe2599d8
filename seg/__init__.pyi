"""Types of the names ``seg`` exports lazily (see seg/__init__.py), for IDEs and type checkers."""

from seg.errors import AnnotationError as AnnotationError
from seg.errors import ImageError as ImageError
from seg.errors import ImageTooLargeError as ImageTooLargeError
from seg.errors import ModelFileError as ModelFileError
from seg.errors import ModelMismatchError as ModelMismatchError
from seg.errors import SegError as SegError
from seg.errors import SettingsError as SettingsError
from seg.errors import TrainingError as TrainingError
from seg.errors import VolumeHeaderError as VolumeHeaderError
from seg.errors import VoxelSizeError as VoxelSizeError
from seg.evaluate import AccuracyReport as AccuracyReport
from seg.evaluate import estimate_accuracy as estimate_accuracy
from seg.evaluate import label_next as label_next
from seg.evaluate import suggest_settings as suggest_settings
from seg.features import DEFAULT_PRESET as DEFAULT_PRESET
from seg.features import PRESETS as PRESETS
from seg.features import FeatureSettings as FeatureSettings
from seg.features import compute_features as compute_features
from seg.forest import Forest as Forest
from seg.forest import ForestSettings as ForestSettings
from seg.images import Normalization as Normalization
from seg.images import as_frames as as_frames
from seg.images import normalize as normalize
from seg.images import read_image as read_image
from seg.images.volume import Volume as Volume
from seg.images.volume import read_volume as read_volume
from seg.measure import measure as measure_classes
from seg.measure import measure_stack as measure_stack
from seg.model import Model as Model
from seg.model import clean_labels as clean_labels
from seg.model import train as train
from seg.model import uncertainty as uncertainty
from seg.objects import measure_objects as measure_objects
from seg.objects import segment_objects as segment_objects
from seg.persist import describe_model as describe_model
from seg.persist import export_joblib as export_joblib
from seg.persist import load_model as load_model
from seg.persist import model_to_bytes as model_to_bytes
from seg.persist import save_model as save_model
from seg.strokes import Annotations as Annotations
from seg.strokes import Stroke as Stroke
from seg.strokes import parse_canvas as parse_canvas
from seg.strokes import rasterize as rasterize

__version__: str

__all__ = [
    "AccuracyReport",
    "AnnotationError",
    "Annotations",
    "DEFAULT_PRESET",
    "FeatureSettings",
    "Forest",
    "ForestSettings",
    "ImageError",
    "ImageTooLargeError",
    "Model",
    "ModelFileError",
    "ModelMismatchError",
    "Normalization",
    "PRESETS",
    "SegError",
    "SettingsError",
    "Stroke",
    "TrainingError",
    "Volume",
    "VolumeHeaderError",
    "VoxelSizeError",
    "__version__",
    "as_frames",
    "clean_labels",
    "compute_features",
    "describe_model",
    "estimate_accuracy",
    "export_joblib",
    "label_next",
    "load_model",
    "measure_classes",
    "measure_objects",
    "measure_stack",
    "model_to_bytes",
    "normalize",
    "parse_canvas",
    "rasterize",
    "read_image",
    "read_volume",
    "save_model",
    "segment_objects",
    "suggest_settings",
    "train",
    "uncertainty",
]
