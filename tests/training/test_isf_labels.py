"""Attribute labels: the demo data writes them, labels.csv is checked with one clear line per
problem, edits like "hair=red" are parsed against the vocabulary, and the held-out split is
stable and disjoint."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from training.demo_data import ATTRIBUTES, HAIR_COLOURS, AnimeStyle, hair_colour_name, make_demo_data
from training.isf.attributes import KEEP, AttributeVocab, EditError, LabelsError, read_labels
from training.isf.data import in_holdout, split


# ---------------------------------------------------------------------------------------------
# demo data
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rgb, name", [
    ((10, 10, 12), "black"), ((110, 70, 40), "brown"), ((235, 215, 140), "blonde"),
    ((215, 215, 225), "silver"), ((225, 30, 40), "red"), ((240, 140, 40), "orange"),
    ((240, 225, 60), "yellow"), ((60, 200, 70), "green"), ((60, 220, 230), "cyan"),
    ((40, 80, 230), "blue"), ((140, 60, 220), "purple"), ((240, 110, 190), "pink")])
def test_hair_colour_names_cover_the_issue_list(rgb, name):
    assert hair_colour_name(rgb) == name
    assert name in HAIR_COLOURS


def test_demo_data_writes_labels_of_what_it_drew(tmp_path):
    make_demo_data(tmp_path, size=32, n_anime=12, n_astronaut=0, lfw_copies=0, seed=3)
    rows = list(csv.DictReader(open(tmp_path / "labels.csv")))
    assert [r["file"] for r in rows] == [f"{i:05d}.png" for i in range(12)]
    assert all((tmp_path / "B_anime" / r["file"]).is_file() for r in rows)
    rng = np.random.default_rng(3 + 1)                       # the drawing's own random stream
    for r in rows:
        want = AnimeStyle.sample(rng).attributes()
        assert {k: r[k] for k in ATTRIBUTES} == want
    for k, values in ATTRIBUTES.items():
        assert {r[k] for r in rows} <= set(values)
    # the labels read back as a vocabulary the ISF trains on
    lab = read_labels(tmp_path / "labels.csv", tmp_path / "B_anime")
    assert lab.vocab.names == tuple(ATTRIBUTES) and len(lab.files) == 12


def test_more_anime_keeps_the_first_images(tmp_path):
    make_demo_data(tmp_path / "a", size=32, n_anime=3, n_astronaut=0, lfw_copies=0)
    make_demo_data(tmp_path / "b", size=32, n_anime=5, n_astronaut=0, lfw_copies=0)
    for i in range(3):
        name = f"{i:05d}.png"
        assert (tmp_path / "a" / "B_anime" / name).read_bytes() == (tmp_path / "b" / "B_anime" / name).read_bytes()
    assert (tmp_path / "b" / "labels.csv").read_text().startswith((tmp_path / "a" / "labels.csv").read_text())


# ---------------------------------------------------------------------------------------------
# labels.csv
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def images(tmp_path):
    from PIL import Image
    d = tmp_path / "anime"
    d.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(d / f"{i}.png")
    return d


def _write(tmp_path, text):
    p = tmp_path / "labels.csv"
    p.write_text(text)
    return p


def _error(path, images) -> str:
    with pytest.raises(LabelsError) as e:
        read_labels(path, images)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_reads_a_good_file(tmp_path, images):
    p = _write(tmp_path, "file,hair,smile\n0.png,red,1\n1.png,blue,0\n2.png,red,0\n\n")
    lab = read_labels(p, images)
    assert lab.vocab.to_dict() == {"hair": ["blue", "red"], "smile": ["0", "1"]}
    assert lab.labels.tolist() == [[1, 1], [0, 0], [1, 0]]
    assert lab.files[1] == images / "1.png"
    only = read_labels(p, images, attributes=["smile"])
    assert only.vocab.names == ("smile",)


@pytest.mark.parametrize("text, words", [
    ("name,hair\n0.png,red\n1.png,blue\n", ["no 'file' column", "name, hair"]),
    ("file,hair\n0.png,red\n9.png,blue\nx.png,red\n", ["2 file(s) not found", "'9.png' (line 3)", "--data-b"]),
    ("file,hair\n0.png,red\n1.png,\n", ["line 3", "empty value for 'hair'", "1.png"]),
    ("file,hair\n0.png,red\n1.png,light blue\n", ["line 3", "'light blue'", "not a plain name"]),
    ("file,hair\n0.png,red\n1.png,red\n", ["'hair' has only one value", "'red'"]),
    ("file,hair\n0.png,red\n1.png,blue,x\n", ["line 3", "3 cells", "header has 2"]),
    ("file,hair\n0.png,red\n0.png,blue\n", ["line 3", "listed twice", "line 2"]),
    ("file\n0.png\n", ["only a 'file' column"]),
    ("", ["empty"]),
])
def test_bad_labels_are_one_clear_line(tmp_path, images, text, words):
    msg = _error(_write(tmp_path, text), images)
    for w in words:
        assert w in msg, msg


def test_missing_labels_file_and_unknown_attribute_column(tmp_path, images):
    assert "labels file not found" in _error(tmp_path / "nope.csv", images)
    p = _write(tmp_path, "file,hair\n0.png,red\n1.png,blue\n")
    with pytest.raises(LabelsError, match=r"--attributes mouth: not a column .*columns: hair"):
        read_labels(p, images, attributes=["mouth"])


# ---------------------------------------------------------------------------------------------
# edits and the condition vector
# ---------------------------------------------------------------------------------------------
VOCAB = AttributeVocab.from_dict({"hair": ["black", "red", "blue"], "mouth": ["line", "smile"]})


def test_parse_edits_every_form():
    assert VOCAB.parse_edits("hair=red") == {"hair": "red"}
    assert VOCAB.parse_edits("hair=red, mouth=smile") == {"hair": "red", "mouth": "smile"}
    assert VOCAB.parse_edits(["hair=red", "mouth=smile"]) == {"hair": "red", "mouth": "smile"}
    assert VOCAB.parse_edits({"mouth": "line"}) == {"mouth": "line"}
    assert VOCAB.parse_edits(None) == {} and VOCAB.parse_edits([]) == {}


@pytest.mark.parametrize("edit, words", [
    ("hat=red", ["unknown attribute 'hat'", "hair (black, red, blue)", "mouth (line, smile)"]),
    ("hair=green", ["unknown value 'green' for 'hair'", "black, red, blue"]),
    ("hair", ["ATTRIBUTE=VALUE", "'hair'"]),
    ("hair=", ["ATTRIBUTE=VALUE"]),
    ("hair=red,hair=blue", ["both 'red' and 'blue'"]),
])
def test_bad_edits_list_what_is_known_in_one_line(edit, words):
    with pytest.raises(EditError) as e:
        VOCAB.parse_edits(edit)
    assert "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_condition_is_one_hot_per_attribute_with_a_keep_slot():
    assert VOCAB.dim == (3 + 1) + (2 + 1)
    idx = torch.tensor([VOCAB.indices({"hair": "blue"}), VOCAB.indices({})])
    assert idx.tolist() == [[2, KEEP], [KEEP, KEEP]]
    d = VOCAB.encode(idx)
    assert d.tolist() == [[0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 1]]


def test_holdout_split_is_stable_and_disjoint(tmp_path, images):
    names = [f"{i:05d}.png" for i in range(2000)]
    share = np.mean([in_holdout(n, 0.3) for n in names])
    assert 0.26 < share < 0.34
    assert [in_holdout(n, 0.3) for n in names] == [in_holdout(n, 0.3) for n in reversed(names)][::-1]
    p = _write(tmp_path, "file,hair\n" + "".join(f"{i}.png,{'red' if i % 2 else 'blue'}\n" for i in range(4)))
    lab = read_labels(p, images)
    tr, ho = split(lab, 0.5, "train"), split(lab, 0.5, "holdout")
    assert set(tr.names).isdisjoint(ho.names) and len(tr.names) + len(ho.names) == 4
