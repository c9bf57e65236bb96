"""Where the similarity comes from: headless calls default as the form does,
and an index this plugin built keeps the default threshold of its kind."""

import numpy as np

import fiftyone as fo
import fiftyone.brain as fob
from support import form, run, threshold_field, write_image

from image_dedup import index_sources, pixel_embeddings, verification

FIND = "find_approximate_duplicate_images"


def test_without_sim_choices_the_first_index_is_searched(near_dataset):
    result = run(FIND, near_dataset).result
    assert result["threshold"] == index_sources.DEFAULT_THRESHOLD
    assert result["num_groups"] == 2  # 4, 5 near 0; 6 near 1
    assert near_dataset.list_brain_runs() == ["sim"]


def test_without_any_index_the_pixel_index_is_built(dataset, tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    result = run(FIND, dataset).result
    assert dataset.list_brain_runs() == [pixel_embeddings.DEFAULT_BRAIN_KEY]
    assert result["threshold"] == verification.CANDIDATE_THRESHOLD and result["verified"]


def test_a_pixel_index_picked_as_existing_keeps_the_pixel_default(dataset, tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    dataset.add_samples([fo.Sample(filepath=p) for p in paths])
    run(FIND, dataset, index_source="pixels", new_brain_key="px")
    config = dataset.get_brain_info("px").config
    assert getattr(config, index_sources.KIND_ATTRIBUTE) == "pixels"
    result = run(FIND, dataset, index_source="existing", sim_choices="px").result
    assert result["threshold"] == verification.CANDIDATE_THRESHOLD and result["verified"]
    shown = form(FIND, dataset, index_source="existing", sim_choices="px")
    assert threshold_field(shown)["default"] == verification.CANDIDATE_THRESHOLD
    assert shown["verify"]["default"] is True
    unverified = form(FIND, dataset, index_source="existing", sim_choices="px", verify=False)
    assert threshold_field(unverified)["default"] == pixel_embeddings.DEFAULT_THRESHOLD
    fob.compute_similarity(dataset, embeddings=np.eye(3, 8, dtype=np.float32), backend="sklearn", brain_key="sim")
    other = form(FIND, dataset, index_source="existing", sim_choices="sim")
    assert threshold_field(other)["default"] == index_sources.DEFAULT_THRESHOLD
    # another default, another field name: the App shows the new default when the index changes
    assert not {name for name in shown if name.startswith("threshold_value")} & set(other)


def test_a_taken_new_brain_key_is_flagged_while_typing(near_dataset):
    shown = form(FIND, near_dataset, index_source="pixels", new_brain_key="sim")
    assert shown["new_brain_key"]["invalid"] is True
    assert "already used" in shown["new_brain_key"]["error_message"]
    assert not form(FIND, near_dataset, index_source="pixels", new_brain_key="new").get(
        "new_brain_key", {}).get("invalid")
