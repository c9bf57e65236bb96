"""Near duplicates with no index and no download: the find operator builds a
regular similarity brain run from pixel embeddings; its quality is measured on
edited copies of real photos. A zoo model needs internet: offline it fails
clearly and changes nothing."""

import itertools

import numpy as np
import pytest

import fiftyone as fo
from database import free_port
from support import blocking, form, labels, run, threshold_field, write_image
from photo_edits import EDITS, write_photo_set

from image_dedup import approx_dups, pixel_embeddings, verification

FIND = "find_approximate_duplicate_images"
MODEL = "mobilenet-v2-imagenet-torch"  # a small zoo model whose weights are not here


def f1(pairs: set, truth: set) -> float:
    hits = len(pairs & truth)
    return 2 * hits / (len(pairs) + len(truth))


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory):
    return write_photo_set(tmp_path_factory.mktemp("photos"), seed=0)


def test_pixel_index_finds_edited_photos(dataset, photo_set):
    paths, sources = photo_set
    assert len(set(sources)) == 20 and len(paths) == 20 * (1 + len(EDITS))
    dataset.add_samples([fo.Sample(filepath=p, source=s) for p, s in zip(paths, sources)])
    result = run(FIND, dataset, index_source="pixels").result
    assert result["threshold"] == verification.CANDIDATE_THRESHOLD and result["verified"]

    info = dataset.get_brain_info("dedup_pixels")
    assert info.config.type == "similarity" and info.config.method == "sklearn"
    first = dataset.first()
    closest = dataset.sort_by_similarity(first.id, k=3, brain_key="dedup_pixels")
    assert closest.values("source") == [first.source] * 3  # any brain tool can use it

    truth = {frozenset(p) for s in set(sources)
             for p in itertools.combinations([i for i, t in zip(paths, sources) if t == s], 2)}
    ids, groups = dataset.exists("approx_dup_group_id").values(["filepath", "approx_dup_group_id"])
    members = {}
    for path, group in zip(ids, groups):
        members.setdefault(group, []).append(path)
    grouped = {frozenset(p) for m in members.values() for p in itertools.combinations(m, 2)}

    index = dataset.load_brain_results("dedup_pixels")
    embeddings = index.get_embeddings()[0].astype(np.float64)  # plain cosine: never centred
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    dist = 1 - embeddings @ embeddings.T
    order = dict(zip(dataset.values("id"), dataset.values("filepath")))
    index_paths = [order[i] for i in index.sample_ids]
    close = {frozenset((index_paths[i], index_paths[j]))
             for i, j in zip(*np.nonzero(np.triu(dist <= pixel_embeddings.DEFAULT_THRESHOLD, 1)))}
    print(f"pixel embedding alone at {pixel_embeddings.DEFAULT_THRESHOLD}: pairwise F1 "
          f"{f1(close, truth):.3f}, false pairs {len(close - truth)}; verified groups at "
          f"{result['threshold']}: F1 {f1(grouped, truth):.3f}, false pairs {len(grouped - truth)}")
    assert f1(close, truth) >= 0.95
    assert f1(grouped, truth) >= 0.95


def test_a_verified_find_reports_its_verification_progress(dataset, photo_set):
    # verification is most of a large find's time: without reports the App shows nothing
    # moving, and the find lock (renewed as progress is reported) would go stale
    dataset.add_samples([fo.Sample(filepath=p) for p in photo_set[0][:24]])
    run(FIND, dataset, index_source="pixels")
    calls = []
    approx_dups.find_approximate_duplicates(dataset, pixel_embeddings.DEFAULT_BRAIN_KEY,
                                            threshold=verification.CANDIDATE_THRESHOLD,
                                            progress=lambda fraction, label: calls.append((fraction, label)))
    rounds = [(fraction, label) for fraction, label in calls if label.startswith("verification round 1: ")]
    assert rounds and rounds[-1][0] == 1.0 and "image pairs" in rounds[-1][1]


def test_embedding_reports_progress_block_by_block(tmp_path, monkeypatch):
    monkeypatch.setattr(pixel_embeddings, "BLOCK", 2)
    paths = [write_image(tmp_path / f"img{k}.png", seed=k) for k in range(5)]
    calls = []
    vectors = pixel_embeddings.embed_images(paths, num_workers=1,
                                            progress=lambda fraction, label: calls.append((fraction, label)))
    assert vectors.shape == (5, pixel_embeddings.DIM)
    assert calls == [(0.4, "embedded 2 of 5 images"), (0.8, "embedded 4 of 5 images"),
                     (1.0, "embedded 5 of 5 images")]


def test_no_index_form_offers_pixels(dataset, tmp_path):
    dataset.add_sample(fo.Sample(filepath=write_image(tmp_path / "a.png", seed=1)))
    shown = form(FIND, dataset)
    assert shown["index_source"]["default"] == "pixels"
    assert [c["value"] for c in shown["index_source"]["view"]["choices"]] == ["pixels", "model"]
    assert shown["new_brain_key"]["default"] == "dedup_pixels"
    assert threshold_field(shown)["default"] == verification.CANDIDATE_THRESHOLD
    assert shown["verify"]["default"] is True and shown["mirror"]["default"] is True
    unverified = form(FIND, dataset, verify=False)
    assert threshold_field(unverified)["default"] == pixel_embeddings.DEFAULT_THRESHOLD
    assert any("no similarity index" in label for label in labels(shown))
    assert not blocking(shown)
    assert "model_name" in form(FIND, dataset, index_source="model")


def nothing_changed(dataset):
    return (dataset.list_brain_runs() == []
            and "approx_dup_group_id" not in dataset.get_field_schema())


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Every download goes to a closed local port, and no weights are cached:
    the machine is offline for this test, whatever its network."""
    closed = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, closed)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(fo.config, "model_zoo_dir", str(tmp_path / "zoo"))


def test_zoo_model_offline_fails_clearly(dataset, tmp_path, offline):
    dataset.add_sample(fo.Sample(filepath=write_image(tmp_path / "a.png", seed=1)))
    with pytest.raises(fo.operators.executor.ExecutionError, match="needs internet"):
        run(FIND, dataset, index_source="model", model_name=MODEL, new_brain_key="zoo")
    assert nothing_changed(dataset)


@pytest.mark.parametrize("params, message", [
    (dict(index_source="model", model_name="no-such-model"), "is not a FiftyOne zoo model"),
    (dict(index_source="model"), "model_name. Reason: Required"),
    (dict(index_source="pixels", threshold_value=3.0), "between 0 and 2.0"),
    (dict(index_source="pixels", new_brain_key=""), "empty or already used"),
])
def test_bad_index_requests_change_nothing(dataset, tmp_path, params, message):
    dataset.add_sample(fo.Sample(filepath=write_image(tmp_path / "a.png", seed=1)))
    with pytest.raises(fo.operators.executor.ExecutionError, match=message):
        run(FIND, dataset, **params)
    assert nothing_changed(dataset)


def test_unreadable_image_and_taken_key(dataset, tmp_path):
    dataset.add_samples([fo.Sample(filepath=write_image(tmp_path / "a.png", seed=1)),
                         fo.Sample(filepath=str(tmp_path / "missing.png"))])
    with pytest.raises(fo.operators.executor.ExecutionError, match="1 images can't be read"):
        run(FIND, dataset, index_source="pixels")
    assert nothing_changed(dataset)
    dataset.delete_samples(dataset.match(fo.ViewField("filepath").ends_with("missing.png")))
    run(FIND, dataset, index_source="pixels")
    with pytest.raises(fo.operators.executor.ExecutionError, match="already used"):
        run(FIND, dataset, index_source="pixels")
    assert dataset.list_brain_runs() == ["dedup_pixels"]


def test_embedding_mirror_flat_colours_and_no_zero_vector(tmp_path):
    from PIL import Image, ImageOps
    import skimage.data

    rocket = Image.fromarray(skimage.data.rocket())
    rocket.save(tmp_path / "r.png")
    ImageOps.mirror(rocket).save(tmp_path / "m.png")
    paths = [str(tmp_path / "r.png"), str(tmp_path / "m.png")]
    for k, colour in enumerate([(200, 30, 30), (30, 60, 200), (128, 128, 128), (0, 0, 0)]):
        Image.new("RGB", (64, 48), colour).save(tmp_path / f"flat{k}.png")
        paths.append(str(tmp_path / f"flat{k}.png"))
    x = pixel_embeddings.embed_images(paths, num_workers=2)
    assert x.shape == (len(paths), pixel_embeddings.DIM) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)  # never zero
    assert 1 - x[0] @ x[1] < 1e-4  # mirror invariant by default
    y = np.stack([pixel_embeddings.embed_image(p, mirror_invariant=False) for p in paths[:2]])
    assert 1 - y[0] @ y[1] > pixel_embeddings.DEFAULT_THRESHOLD  # left/right kept apart
    flat = x[2:]
    dist = 1 - flat @ flat.T
    assert dist[np.triu_indices(len(flat), 1)].min() > pixel_embeddings.DEFAULT_THRESHOLD
