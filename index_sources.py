"""Where an approximate find's similarity comes from: one registry
(:data:`SOURCES`) of index sources, each a small object with its form
inputs, its default threshold and how it gets the brain key to search
(an existing index, or a new one it creates). Adding a source is adding
one entry.
"""

import logging
from typing import Optional

import fiftyone as fo
import fiftyone.brain as fob
import fiftyone.operators.types as types
import fiftyone.zoo as foz

from . import pixel_embeddings, similarity, verification
from .form_widgets import dropdown
from .progress import Progress

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5  # the original plugin's, for indexes of any embedding
KIND_ATTRIBUTE = similarity.KIND_ATTRIBUTE  # a built index keeps its source's defaults
MODEL_HELP = (
    "a FiftyOne zoo model name (fiftyone.zoo.list_zoo_models()), e.g. "
    "'clip-vit-base32-torch'; its weights are downloaded on first use"
)


class ExistingIndex:
    """A similarity index the dataset already has (``sim_choices``; without
    it, the first one, as the form preselects)."""

    name = "existing"
    label = "An existing similarity index"

    def add_inputs(self, ctx, inputs: types.Object) -> Optional[str]:
        """Adds the index picker; returns the picked brain key."""
        brain_keys = similarity.similarity_brain_keys(ctx.dataset)
        dropdown(inputs, "sim_choices", brain_keys, "Similarity index", required=False)
        return self.brain_key(ctx.dataset, ctx.params)

    def metric(self, dataset: fo.Dataset, params: dict) -> str:
        """The metric of the index to search; raises ValueError if unusable."""
        return similarity.similarity_config(dataset, self.brain_key(dataset, params)).metric

    def brain_key(self, dataset: fo.Dataset, params: dict, progress: Progress = None) -> Optional[str]:
        """The brain key to search (nothing is built: ``progress`` is not called)."""
        if "sim_choices" in params:
            return params["sim_choices"]
        return next(iter(similarity.similarity_brain_keys(dataset)), None)

    def _builder(self, dataset: fo.Dataset, params: dict):
        """The source that built the index, if this plugin did."""
        key = self.brain_key(dataset, params)
        if key not in dataset.list_brain_runs():
            return None
        builder = SOURCES.get(similarity.index_kind(dataset.get_brain_info(key).config))
        return None if builder is self else builder

    def default_threshold(self, dataset: fo.Dataset, params: dict) -> float:
        """The default of the index's kind: an index this plugin built keeps
        the default of the source that built it."""
        builder = self._builder(dataset, params)
        return builder.default_threshold(dataset, params) if builder else DEFAULT_THRESHOLD

    def verifies(self, dataset: fo.Dataset, params: dict) -> bool:
        """Whether a find verifies candidate pairs by default."""
        builder = self._builder(dataset, params)
        return builder.verifies(dataset, params) if builder else False


class _NewIndex:
    """A similarity index a find creates over the whole dataset first, as a
    regular sklearn brain run under ``new_brain_key``."""

    name = label = None
    threshold = DEFAULT_THRESHOLD

    def default_threshold(self, dataset: fo.Dataset, params: dict) -> float:
        return self.threshold

    def verifies(self, dataset: fo.Dataset, params: dict) -> bool:
        return False

    def add_inputs(self, ctx, inputs: types.Object) -> Optional[str]:
        """Adds the new brain key, checked while the user types."""
        prop = inputs.str("new_brain_key", default=pixel_embeddings.DEFAULT_BRAIN_KEY,
                          label="Brain key of the new index",
                          description="The whole dataset is indexed as a regular similarity brain "
                          "run; the find's output shows its distance histogram")
        error = _taken_key_error(ctx.dataset, ctx.params)
        if error:
            prop.invalid = True
            prop.error_message = error
        return None

    def metric(self, dataset: fo.Dataset, params: dict) -> str:
        error = _taken_key_error(dataset, params)
        if error:
            raise ValueError(error)
        return "cosine"

    def brain_key(self, dataset: fo.Dataset, params: dict, progress: Progress = None) -> str:
        """Creates the index, reporting to the optional ``progress``
        callback; returns its brain key.

        Raises:
            ValueError: if the key is taken or the index can't be built; no
                brain run is left behind then
        """
        self.metric(dataset, params)
        key = params.get("new_brain_key", pixel_embeddings.DEFAULT_BRAIN_KEY)
        logger.info("Building similarity index '%s' (%s)", key, self.name)
        self.create(dataset, key, params, progress)
        similarity.record_index_kind(dataset, key, self.name)
        return key

    def create(self, dataset: fo.Dataset, brain_key: str, params: dict, progress: Progress) -> None:
        raise NotImplementedError


def _taken_key_error(dataset: fo.Dataset, params: dict) -> Optional[str]:
    key = params.get("new_brain_key", pixel_embeddings.DEFAULT_BRAIN_KEY)
    if not key or key in dataset.list_brain_runs():
        return f"new_brain_key '{key}' is empty or already used; pick another"
    return None


class PixelIndex(_NewIndex):
    """Perceptual embeddings of the pixels (:mod:`pixel_embeddings`): no
    model, no download."""

    name = pixel_embeddings.INDEX_KIND
    label = "New index from pixels (built in, no download)"

    def default_threshold(self, dataset: fo.Dataset, params: dict) -> float:
        """Verified candidates are collected wider than unverified ones."""
        if params.get("verify", True):
            return verification.CANDIDATE_THRESHOLD
        return pixel_embeddings.DEFAULT_THRESHOLD

    def verifies(self, dataset: fo.Dataset, params: dict) -> bool:
        return True

    def create(self, dataset: fo.Dataset, brain_key: str, params: dict, progress: Progress) -> None:
        pixel_embeddings.compute_pixel_similarity(
            dataset, brain_key, mirror_invariant=params.get("mirror", True), progress=progress
        )


class ZooModelIndex(_NewIndex):
    """Embeddings of a FiftyOne zoo model (its weights download on first use)."""

    name = "model"
    label = "New index from a FiftyOne zoo model (downloads weights)"

    def add_inputs(self, ctx, inputs: types.Object) -> Optional[str]:
        inputs.str("model_name", required=True, label="Zoo model", description=MODEL_HELP)
        return super().add_inputs(ctx, inputs)

    def metric(self, dataset: fo.Dataset, params: dict) -> str:
        if params.get("model_name") not in foz.list_zoo_models():
            raise ValueError(f"model_name '{params.get('model_name')}' is not {MODEL_HELP}")
        return super().metric(dataset, params)

    def create(self, dataset: fo.Dataset, brain_key: str, params: dict, progress: Progress) -> None:
        model_name = params["model_name"]  # the brain reports its own progress (to the log)
        try:
            fob.compute_similarity(dataset, model=model_name, brain_key=brain_key, backend="sklearn")
        except (OSError, ImportError) as e:
            if brain_key in dataset.list_brain_runs():
                dataset.delete_brain_run(brain_key)
            raise ValueError(
                f"Could not compute embeddings with zoo model '{model_name}' ({e}). Its weights "
                "are downloaded on first use, which needs internet; offline, use "
                "index_source='pixels'"
            ) from e


SOURCES = {source.name: source for source in (ExistingIndex(), PixelIndex(), ZooModelIndex())}


def get_source(dataset: fo.Dataset, params: dict):
    """The source the params name; without ``index_source``, the form's
    default: an existing index if the dataset has one, else pixels.

    Raises:
        ValueError: on an unknown name
    """
    name = params.get("index_source", default_source_name(dataset, params))
    if name not in SOURCES:
        raise ValueError(f"index_source must be one of {tuple(SOURCES)}, got '{name}'")
    return SOURCES[name]


def default_source_name(dataset: fo.Dataset, params: dict) -> str:
    """What the form preselects: an existing index if there is one (or if
    one is named: a missing one is an error, not a reason to build one)."""
    if "sim_choices" in params or similarity.similarity_brain_keys(dataset):
        return ExistingIndex.name
    return PixelIndex.name
